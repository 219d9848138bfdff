/** @file The one table of shared WGSL helpers (NaN-safe math, Philox, cos 2πu); the renderer emits only those a kernel uses. */

/**
 * Shared WGSL math: NaN tests by bit pattern (compilers may fold `x != x`), non-constant inf/NaN (constant ones
 * are shader-creation errors), and accurate expm1/log1p (GPU exp/log only promise absolute error near 0/1).
 * Each entry is one function named by its key; a helper's dependencies are the other `mg_*` names in its source.
 */
export const WGSL_HELPERS = {
  mg_isnan: `fn mg_isnan(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u; }`,
  mg_nan: `fn mg_nan() -> f32 { var b = 0x7fc00000u; return bitcast<f32>(b); }`,
  mg_inf: `fn mg_inf() -> f32 { var b = 0x7f800000u; return bitcast<f32>(b); }`,
  mg_log: `fn mg_log(x: f32) -> f32 {
  if (x < 0.0) { return mg_nan(); }
  if (x == 0.0) { return -mg_inf(); }
  return log(x);
}`,
  mg_expm1: `fn mg_expm1(x: f32) -> f32 {
  if (abs(x) < 0.5) {
    return x * (1.0 + x * (1.0 / 2.0 + x * (1.0 / 6.0 + x * (1.0 / 24.0 + x * (1.0 / 120.0 + x * (1.0 / 720.0
      + x * (1.0 / 5040.0 + x * (1.0 / 40320.0 + x * (1.0 / 362880.0)))))))));
  }
  return exp(x) - 1.0;
}`,
  mg_log1p: `fn mg_log1p(x: f32) -> f32 {
  if (abs(x) < 0.5) {
    // log1p(x) = 2 atanh(s) with s = x / (2 + x), |s| <= 1/3: the odd series converges fast and stays relative.
    let s = x / (2.0 + x);
    let s2 = s * s;
    return 2.0 * s * (1.0 + s2 * (1.0 / 3.0 + s2 * (1.0 / 5.0 + s2 * (1.0 / 7.0 + s2 * (1.0 / 9.0 + s2 * (1.0 / 11.0
      + s2 * (1.0 / 13.0 + s2 * (1.0 / 15.0 + s2 * (1.0 / 17.0)))))))));
  }
  return mg_log(1.0 + x);
}`,
  mg_tanh: `fn mg_tanh(x: f32) -> f32 {
  // tanh|x| = -e / (2 + e) with e = expm1(-2|x|): no inf/inf for large |x|, no cancellation near 0.
  let e = mg_expm1(-2.0 * abs(x));
  let t = -e / (2.0 + e);
  return select(t, -t, x < 0.0);
}`,
  mg_sigmoid: `fn mg_sigmoid(x: f32) -> f32 {
  if (x >= 0.0) { return 1.0 / (1.0 + exp(-x)); }
  let e = exp(x);
  return e / (1.0 + e);
}`,
  mg_sign: `fn mg_sign(x: f32) -> f32 {
  if (mg_isnan(x)) { return x; }
  return select(select(0.0, -1.0, x < 0.0), 1.0, x > 0.0);
}`,
  mg_relu: `fn mg_relu(x: f32) -> f32 { return select(0.0, x, x > 0.0 || mg_isnan(x)); }`,
  mg_sqrt: `fn mg_sqrt(x: f32) -> f32 { return select(sqrt(x), mg_nan(), x < 0.0); }`,
  mg_max: `fn mg_max(a: f32, b: f32) -> f32 {
  if (mg_isnan(a) || mg_isnan(b)) { return mg_nan(); }
  return select(b, a, a > b);
}`,
  mg_min: `fn mg_min(a: f32, b: f32) -> f32 {
  if (mg_isnan(a) || mg_isnan(b)) { return mg_nan(); }
  return select(b, a, a < b);
}`,
  mg_pow: `fn mg_pow(x: f32, y: f32) -> f32 {
  if (mg_isnan(x) || mg_isnan(y)) { return mg_nan(); }
  if (y == 0.0) { return 1.0; }
  let ax = abs(x);
  var r: f32;
  if (ax == 0.0) { r = select(mg_inf(), 0.0, y > 0.0); } else { r = pow(ax, y); }
  if (x < 0.0) {
    if (floor(y) != y) { return mg_nan(); }
    if (fract(y * 0.5) != 0.0) { r = -r; }
  }
  return r;
}`,
  mg_f32_to_i32: `fn mg_f32_to_i32(x: f32) -> i32 {
  if (mg_isnan(x)) { return 0; }
  if (x >= 2147483648.0) { return 2147483647; }
  if (x <= -2147483648.0) { return -2147483647 - 1; }
  return i32(x);
}`,
  mg_f32_to_u32: `fn mg_f32_to_u32(x: f32) -> u32 {
  if (mg_isnan(x) || x <= 0.0) { return 0u; }
  if (x >= 4294967296.0) { return 4294967295u; }
  return u32(x);
}`,
  /**
   * Philox4x32-10 (Salmon et al. 2011). WGSL has no 64-bit integers, so the high word of each 32×32 product is
   * assembled from 16-bit halves, exactly as the reference does.
   */
  mg_mulhi: `fn mg_mulhi(a: u32, b: u32) -> u32 {
  let aL = a & 0xffffu; let aH = a >> 16u; let bL = b & 0xffffu; let bH = b >> 16u;
  let ll = aL * bL; let lh = aL * bH; let hl = aH * bL; let hh = aH * bH;
  let mid = (ll >> 16u) + (lh & 0xffffu) + (hl & 0xffffu);
  return hh + (lh >> 16u) + (hl >> 16u) + (mid >> 16u);
}`,
  mg_philox: `fn mg_philox(counter: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
  var c = counter;
  var k = key;
  for (var r = 0u; r < 10u; r++) {
    let hi0 = mg_mulhi(0xd2511f53u, c.x);
    let lo0 = 0xd2511f53u * c.x;
    let hi1 = mg_mulhi(0xcd9e8d57u, c.z);
    let lo1 = 0xcd9e8d57u * c.z;
    c = vec4<u32>(hi1 ^ c.y ^ k.x, lo1, hi0 ^ c.w ^ k.y, lo0);
    k = k + vec2<u32>(0x9e3779b9u, 0xbb67ae85u);
  }
  return c;
}`,
  /**
   * cos(2π u) for u ∈ [0, 1) a multiple of 2⁻²⁴, without the GPU's cos: Vulkan only requires 2⁻¹¹ absolute
   * accuracy on [−π, π] and SwiftShader's is ~1.9e-4 off. u = q/4 + t with q = round(4u) and |t| ≤ 1/8 is exact in
   * f32 (both terms are multiples of 2⁻²⁴), so the quadrant is exact and the Taylor series of cos/sin on
   * |2πt| ≤ π/4 (truncation < 2e-10) leaves only a few f32 roundings.
   */
  mg_cos2pi: `fn mg_cos2pi(u: f32) -> f32 {
  let q = round(4.0 * u);
  let x = 6.283185307179586 * (u - 0.25 * q);
  let x2 = x * x;
  let c = 1.0 - x2 * (1.0 / 2.0 - x2 * (1.0 / 24.0 - x2 * (1.0 / 720.0 - x2 * (1.0 / 40320.0 - x2 * (1.0 / 3628800.0)))));
  let s = x * (1.0 - x2 * (1.0 / 6.0 - x2 * (1.0 / 120.0 - x2 * (1.0 / 5040.0 - x2 * (1.0 / 362880.0 - x2 * (1.0 / 39916800.0))))));
  switch (u32(q) & 3u) {
    case 0u: { return c; }
    case 1u: { return -s; }
    case 2u: { return -c; }
    default: { return s; }
  }
}`,
} as const;

export type HelperName = keyof typeof WGSL_HELPERS;
