/**
 * @file tidy / noGrad / enableGrad with an async body: refused with a named error, without leaking the tensors the
 * body made before its first await or the tensors its promise resolves to (nobody else can reach either).
 */
import { describe, it, expect } from 'vitest';
import * as raw from '@metagrad/tensor';
import { InvalidArgumentError, type Tensor } from '@metagrad/tensor';
import * as ag from '@metagrad/autograd';
import { useDevice } from '../helpers/device';

const device = useDevice();

/** An async body that makes two tensors before its first await and returns a third made after it. */
function asyncBody(finished: () => void, failAfterAwait = false): () => Promise<Tensor> {
  return async () => {
    const a = raw.zeros([4], 'f32', device());
    raw.ones([4], 'f32', device());
    await Promise.resolve();
    if (failAfterAwait) {
      finished();
      throw new Error('the abandoned body failed later');
    }
    const b = raw.full([4], 2, 'f32', device());
    finished();
    void a;
    return b;
  };
}

/** Waits for the body to finish, then for the promise handlers queued after it. */
async function settle(finished: Promise<void>): Promise<void> {
  await finished;
  await new Promise((r) => setTimeout(r, 0));
}

describe('scopes with an async body', () => {
  it('tidy throws InvalidArgumentError and frees the tensors made before the await and the resolved result', async () => {
    const before = ag.memory(device()).liveTensors;
    let done!: () => void;
    const finished = new Promise<void>((r) => (done = r));
    expect(() => raw.tidy(asyncBody(done) as () => unknown)).toThrow(InvalidArgumentError);
    expect(() => raw.tidy(async () => 1)).toThrow(/synchronous/);
    await settle(finished);
    expect(ag.memory(device()).liveTensors).toBe(before);
  });

  it('an abandoned body that rejects later is not an unhandled rejection, and still leaks nothing', async () => {
    const before = ag.memory(device()).liveTensors;
    let done!: () => void;
    const finished = new Promise<void>((r) => (done = r));
    expect(() => raw.tidy(asyncBody(done, true) as () => unknown)).toThrow(InvalidArgumentError);
    await settle(finished);
    expect(ag.memory(device()).liveTensors).toBe(before);
  });

  it('noGrad and enableGrad refuse an async body the same way and free its resolved result', async () => {
    for (const scope of [ag.noGrad, ag.enableGrad]) {
      const before = ag.memory(device()).liveTensors;
      let done!: () => void;
      const finished = new Promise<void>((r) => (done = r));
      // Without tidy the tensors made before the await belong to the caller's scope: wrap in one, as usual code does.
      expect(() => raw.tidy(() => scope(asyncBody(done) as () => unknown))).toThrow(InvalidArgumentError);
      expect(ag.isGradEnabled()).toBe(true);
      await settle(finished);
      expect(ag.memory(device()).liveTensors).toBe(before);
    }
  });

  it('a synchronous tidy still keeps its result and frees the rest', async () => {
    const before = ag.memory(device()).liveTensors;
    const kept = raw.tidy(() => {
      raw.zeros([2], 'f32', device());
      return raw.ones([2], 'f32', device());
    });
    expect(ag.memory(device()).liveTensors).toBe(before + 1);
    expect(Array.from(await kept.toArray())).toEqual([1, 1]);
    kept.dispose();
  });
});
