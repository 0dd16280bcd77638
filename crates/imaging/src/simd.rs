//! Vector kernels for the JPEG encoder ([`crate::jpegenc`]), chosen at run time.
//!
//! The build targets generic x86-64 (SSE2 only), so the encoder's hot loops get an
//! AVX2 copy when the CPU has it (`is_x86_feature_detected!`), an SSE2 one otherwise on
//! x86-64, and a scalar one elsewhere. Every kernel computes exactly what the scalar one
//! does (the tests compare them on random and extreme blocks), so the files do not
//! depend on the CPU.
//!
//! A kernel is a zero-sized token ([`Kernel`]): an [`Avx2`] value exists only once the
//! CPU was found to have AVX2, which is what makes its safe methods sound. Code generic
//! over the token runs inside [`Kernel::run`], which compiles it with the token's
//! target features so that the kernels' intrinsics inline into it.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// One quantisation table as libjpeg's SIMD code applies it, zigzag order:
/// `|q| = (((|x| + corr) * recip) >> 16) * scale >> 16` in 16-bit lanes.
#[derive(Clone, Copy)]
#[repr(C, align(32))]
pub(crate) struct Quant {
    pub recip: [u16; 64],
    pub corr: [u16; 64],
    pub scale: [u16; 64],
}

impl Quant {
    /// Lane `i` for `divisor` (the table entry `<< 3`, at most 65,535):
    /// `compute_reciprocal` of libjpeg's `jcdctmgr.c` (16-bit DCTELEM).
    pub(crate) fn set(&mut self, i: usize, divisor: u32) {
        let b = 31 - divisor.leading_zeros(); // flss(divisor) - 1
        let mut r = 16 + b;
        let mut fq = (1u64 << r) / u64::from(divisor);
        let fr = (1u64 << r) % u64::from(divisor);
        let mut c = divisor / 2;
        if fr == 0 {
            fq >>= 1;
            r -= 1;
        } else if fr <= u64::from(divisor / 2) {
            c += 1;
        } else {
            fq += 1;
        }
        self.recip[i] = fq as u16;
        self.corr[i] = c as u16;
        self.scale[i] = (1u32 << (32 - r)) as u16;
    }
}

/// What the entropy coder needs of one quantised block.
#[repr(C, align(32))]
pub(crate) struct Coded {
    /// The quantised coefficients, zigzag order.
    pub z: [i16; 64],
    /// `16 * k + nbits(|z[k]|)` for each coefficient `k`: the Huffman symbol of a
    /// coefficient that follows a zero run of `r` is `sym[k] - 16 * (k - r)`.
    pub sym: [u16; 64],
}

impl Coded {
    pub(crate) fn new() -> Coded {
        Coded {
            z: [0; 64],
            sym: [0; 64],
        }
    }
}

/// `16 * k` for k = 0..64.
#[repr(C, align(32))]
struct Ramp([u16; 64]);
const RAMP: Ramp = {
    let mut r = [0u16; 64];
    let mut k = 0;
    while k < 64 {
        r[k] = 16 * k as u16;
        k += 1;
    }
    Ramp(r)
};

/// A set of kernels; see the module docs.
pub(crate) trait Kernel: Copy {
    /// Quantise the raw DCT block `raw` (zigzag) with `q` into `out`, and return the
    /// mask of its nonzero AC coefficients (bit k for coefficient k; bit 0 is clear).
    fn quantise(self, q: &Quant, raw: &[i16; 64], out: &mut Coded) -> u64;

    /// `f.call(self)`, compiled with this kernel's target features (`f`'s `call` must be
    /// `#[inline(always)]` so that it, and what it inlines, gets them).
    fn run<R>(self, f: impl Dispatch<R>) -> R;
}

/// The portable kernels: plain Rust, the reference the vector ones are tested against.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(all(target_arch = "x86_64", not(test)), allow(dead_code))]
pub(crate) struct Scalar;

impl Kernel for Scalar {
    #[inline(always)]
    #[allow(clippy::needless_range_loop)] // i indexes five arrays
    fn quantise(self, q: &Quant, raw: &[i16; 64], out: &mut Coded) -> u64 {
        let mut m = 0u64;
        for i in 0..64 {
            let x = raw[i];
            let s = x >> 15; // 0 or -1
            let t = (x ^ s).wrapping_sub(s) as u16;
            let p = ((u32::from(t.wrapping_add(q.corr[i])) * u32::from(q.recip[i])) >> 16) as u16;
            let v = ((u32::from(p) * u32::from(q.scale[i])) >> 16) as u16;
            out.z[i] = (v as i16 ^ s).wrapping_sub(s);
            out.sym[i] = RAMP.0[i] + (16 - v.leading_zeros()) as u16;
            m |= u64::from(v != 0) << i;
        }
        m & !1
    }

    #[inline(always)]
    fn run<R>(self, f: impl Dispatch<R>) -> R {
        f.call(self)
    }
}

/// SSE2, part of every x86-64 CPU.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sse2;

#[cfg(target_arch = "x86_64")]
impl Kernel for Sse2 {
    #[inline(always)]
    fn quantise(self, q: &Quant, raw: &[i16; 64], out: &mut Coded) -> u64 {
        // SAFETY: SSE2 is part of x86-64; every pointer is to 8 in-bounds lanes of a
        // 64-lane array (g < 8), and the loads and stores are unaligned ones.
        unsafe {
            let zero = _mm_setzero_si128();
            let bias = _mm_set1_epi16(126);
            let mut m = 0u64;
            for g in 0..8 {
                let ld = |a: &[u16; 64]| _mm_loadu_si128(a.as_ptr().add(8 * g).cast());
                let x = _mm_loadu_si128(raw.as_ptr().add(8 * g).cast());
                let s = _mm_srai_epi16(x, 15);
                let a = _mm_sub_epi16(_mm_xor_si128(x, s), s);
                let t = _mm_add_epi16(a, ld(&q.corr));
                let p = _mm_mulhi_epu16(t, ld(&q.recip));
                let v = _mm_mulhi_epu16(p, ld(&q.scale));
                let z = _mm_sub_epi16(_mm_xor_si128(v, s), s);
                _mm_storeu_si128(out.z.as_mut_ptr().add(8 * g).cast(), z);
                // nbits(v) = the exponent of v as a float, less 126 (v <= 65535 is exact).
                let exp = |w: __m128i| _mm_srli_epi32(_mm_castps_si128(_mm_cvtepi32_ps(w)), 23);
                let e = _mm_packs_epi32(
                    exp(_mm_unpacklo_epi16(v, zero)),
                    exp(_mm_unpackhi_epi16(v, zero)),
                );
                let nb = _mm_subs_epu16(e, bias);
                let sym = _mm_add_epi16(nb, ld(&RAMP.0));
                _mm_storeu_si128(out.sym.as_mut_ptr().add(8 * g).cast(), sym);
                let zeros = _mm_cmpeq_epi16(v, zero);
                let bits = _mm_movemask_epi8(_mm_packs_epi16(zeros, zeros)) as u32 & 0xFF;
                m |= u64::from(bits) << (8 * g);
            }
            !m & !1
        }
    }

    #[inline(always)]
    fn run<R>(self, f: impl Dispatch<R>) -> R {
        f.call(self)
    }
}

/// AVX2 (with BMI1, BMI2, LZCNT, POPCNT: every AVX2 CPU has them), detected at run time.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy, Debug)]
pub(crate) struct Avx2(());

#[cfg(target_arch = "x86_64")]
impl Avx2 {
    /// The token, if this CPU has the features.
    pub(crate) fn detect() -> Option<Avx2> {
        let ok = is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("bmi1")
            && is_x86_feature_detected!("bmi2")
            && is_x86_feature_detected!("lzcnt")
            && is_x86_feature_detected!("popcnt");
        ok.then_some(Avx2(()))
    }
}

#[cfg(target_arch = "x86_64")]
impl Kernel for Avx2 {
    #[inline(always)]
    fn quantise(self, q: &Quant, raw: &[i16; 64], out: &mut Coded) -> u64 {
        // SAFETY: an `Avx2` token exists only when the CPU has AVX2 (`detect`); every
        // pointer is to 16 in-bounds lanes of a 64-lane array (g < 4), and the loads and
        // stores are unaligned ones.
        unsafe {
            let zero = _mm256_setzero_si256();
            let bias = _mm256_set1_epi16(126);
            let mut zeros = [zero; 4];
            for (g, zg) in zeros.iter_mut().enumerate() {
                let ld = |a: &[u16; 64]| _mm256_loadu_si256(a.as_ptr().add(16 * g).cast());
                let x = _mm256_loadu_si256(raw.as_ptr().add(16 * g).cast());
                let s = _mm256_srai_epi16(x, 15);
                let a = _mm256_sub_epi16(_mm256_xor_si256(x, s), s);
                let t = _mm256_add_epi16(a, ld(&q.corr));
                let p = _mm256_mulhi_epu16(t, ld(&q.recip));
                let v = _mm256_mulhi_epu16(p, ld(&q.scale));
                let z = _mm256_sub_epi16(_mm256_xor_si256(v, s), s);
                _mm256_storeu_si256(out.z.as_mut_ptr().add(16 * g).cast(), z);
                let exp =
                    |w: __m256i| _mm256_srli_epi32(_mm256_castps_si256(_mm256_cvtepi32_ps(w)), 23);
                // In-lane unpack then in-lane pack: the lanes come back in order.
                let e = _mm256_packs_epi32(
                    exp(_mm256_unpacklo_epi16(v, zero)),
                    exp(_mm256_unpackhi_epi16(v, zero)),
                );
                let nb = _mm256_subs_epu16(e, bias);
                let sym = _mm256_add_epi16(nb, ld(&RAMP.0));
                _mm256_storeu_si256(out.sym.as_mut_ptr().add(16 * g).cast(), sym);
                *zg = _mm256_cmpeq_epi16(v, zero);
            }
            // packs interleaves the 128-bit lanes: (a0 b0 a1 b1); 0xD8 puts them in order.
            let pack = |a: __m256i, b: __m256i| {
                let p = _mm256_permute4x64_epi64(_mm256_packs_epi16(a, b), 0xD8);
                u64::from(_mm256_movemask_epi8(p) as u32)
            };
            let m = pack(zeros[0], zeros[1]) | (pack(zeros[2], zeros[3]) << 32);
            !m & !1
        }
    }

    #[inline(always)]
    fn run<R>(self, f: impl Dispatch<R>) -> R {
        // A direct call of `f.call` (not a closure, which the compiler may decline to
        // inline): what it does is compiled here, with these features.
        #[target_feature(enable = "avx2,bmi1,bmi2,lzcnt,popcnt")]
        fn inner<R>(k: Avx2, f: impl Dispatch<R>) -> R {
            f.call(k)
        }
        // SAFETY: the token proves the CPU has these features.
        unsafe { inner(self, f) }
    }
}

/// Runs `f` with the best kernel this CPU has.
#[inline(always)]
pub(crate) fn dispatch<R>(f: impl Dispatch<R>) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        use std::sync::OnceLock;
        static AVX2: OnceLock<Option<Avx2>> = OnceLock::new();
        if let Some(k) = *AVX2.get_or_init(Avx2::detect) {
            return k.run(f);
        }
        f.call(Sse2)
    }
    #[cfg(not(target_arch = "x86_64"))]
    f.call(Scalar)
}

/// A computation generic over the kernel (closures cannot be generic).
pub(crate) trait Dispatch<R> {
    fn call<K: Kernel>(self, k: K) -> R;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quants() -> Vec<Quant> {
        let mut out = Vec::new();
        for divisor in [8u32, 9, 16, 24, 800, 6050 * 8, 65535] {
            let mut q = Quant {
                recip: [0; 64],
                corr: [0; 64],
                scale: [0; 64],
            };
            for i in 0..64 {
                q.set(i, (divisor + i as u32 * 37).min(65535));
            }
            out.push(q);
        }
        out
    }

    fn blocks() -> Vec<[i16; 64]> {
        let mut s = 0x1234_5678u32;
        let mut rnd = move || {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            s
        };
        let mut out = vec![
            [0i16; 64],
            [i16::MIN; 64],
            [i16::MAX; 64],
            [-1; 64],
            [1; 64],
        ];
        for n in 0..400 {
            let mut b = [0i16; 64];
            for v in &mut b {
                let r = rnd();
                *v = match n % 4 {
                    0 => r as i16,
                    1 => (r % 17) as i16 - 8,
                    2 if r % 3 == 0 => (r >> 8) as i16 % 2048,
                    3 => ((r >> 4) % 16384) as i16 - 8192,
                    _ => 0,
                };
            }
            out.push(b);
        }
        out
    }

    fn check<K: Kernel>(k: K) {
        struct Quantise<'a>(&'a Quant, &'a [i16; 64], &'a mut Coded);
        impl Dispatch<u64> for Quantise<'_> {
            #[inline(always)]
            fn call<K: Kernel>(self, k: K) -> u64 {
                k.quantise(self.0, self.1, self.2)
            }
        }
        for q in &quants() {
            for b in &blocks() {
                let (mut a, mut e) = (Coded::new(), Coded::new());
                let ma = k.run(Quantise(q, b, &mut a));
                let me = Scalar.quantise(q, b, &mut e);
                assert_eq!(ma, me);
                assert_eq!(a.z, e.z);
                assert_eq!(a.sym, e.sym);
            }
        }
    }

    #[test]
    #[allow(clippy::needless_range_loop)]
    fn scalar_quantise_is_libjpegs() {
        for q in &quants() {
            for b in &blocks() {
                let mut c = Coded::new();
                let m = Scalar.quantise(q, b, &mut c);
                for i in 0..64 {
                    let x = i32::from(b[i]);
                    let t = (x.unsigned_abs() + u32::from(q.corr[i])) & 0xFFFF;
                    let p = (t * u32::from(q.recip[i])) >> 16;
                    let v = (p * u32::from(q.scale[i])) >> 16;
                    let z = if x < 0 { -(v as i32) } else { v as i32 };
                    assert_eq!(i32::from(c.z[i]), z);
                    assert_eq!(
                        u32::from(c.sym[i]),
                        16 * i as u32 + (32 - v.leading_zeros())
                    );
                    assert_eq!(m >> i & 1, u64::from(i > 0 && v != 0));
                }
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn vector_kernels_match_scalar() {
        check(Sse2);
        if let Some(k) = Avx2::detect() {
            check(k);
        }
    }
}
