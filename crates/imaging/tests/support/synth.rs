//! Synthetic "photographic" RGB8 images for tests and benchmarks: smooth lighting,
//! multi-octave value noise (texture at every scale, as in a real photo), a few soft
//! blobs and a little sensor grain. Deterministic for a seed. Flat colour would make
//! JPEG sizes and resize costs unrealistically low.

fn hash(x: i64, y: i64, seed: u64) -> f64 {
    let mut h = (x as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (y as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
        ^ seed.wrapping_mul(0x1656_67B1_9E37_79F9);
    h ^= h >> 29;
    h = h.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    h ^= h >> 32;
    (h & 0xFFFF) as f64 / 65535.0
}

fn value_noise(x: f64, y: f64, seed: u64) -> f64 {
    let (xi, yi) = (x.floor() as i64, y.floor() as i64);
    let (fx, fy) = (x - x.floor(), y - y.floor());
    let (sx, sy) = (fx * fx * (3.0 - 2.0 * fx), fy * fy * (3.0 - 2.0 * fy));
    let a = hash(xi, yi, seed);
    let b = hash(xi + 1, yi, seed);
    let c = hash(xi, yi + 1, seed);
    let d = hash(xi + 1, yi + 1, seed);
    let top = a + (b - a) * sx;
    let bot = c + (d - c) * sx;
    top + (bot - top) * sy
}

/// A `w` x `h` RGB8 image that compresses like a photo.
pub fn photo(w: u32, h: u32, seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(w as usize * h as usize * 3);
    let scale = f64::from(w.max(h)).max(1.0);
    for y in 0..h {
        for x in 0..w {
            let (u, v) = (f64::from(x) / scale, f64::from(y) / scale);
            let mut n = 0.0;
            let mut amp = 0.5;
            let mut freq = 4.0;
            for o in 0..7 {
                n += amp * value_noise(u * freq, v * freq, seed + o);
                amp *= 0.6;
                freq *= 2.1;
            }
            let light = 0.6 + 0.4 * (u * 2.0 + v).sin();
            let blob = (-(((u - 0.5).powi(2) + (v - 0.35).powi(2)) * 18.0)).exp();
            let grain = hash(i64::from(x), i64::from(y), seed ^ 0xABCD) - 0.5;
            let base = n * light * 200.0 + blob * 60.0 + grain * 14.0;
            let r = base + 30.0 * value_noise(u * 3.0, v * 3.0, seed + 11);
            let g = base * 0.9 + 20.0 * value_noise(u * 5.0, v * 5.0, seed + 12);
            let b = base * 0.75 + 45.0 * value_noise(u * 2.0, v * 2.0, seed + 13);
            for c in [r, g, b] {
                out.push(c.clamp(0.0, 255.0) as u8);
            }
        }
    }
    out
}
