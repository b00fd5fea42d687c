//! The decimal arithmetic behind sprig's `addf`/`subf`/`mulf`/`divf` (shopspring/decimal):
//! operands are the shortest decimal form of each float, sums and products are exact, quotients
//! are rounded to 16 decimal places, and the result is the nearest float. So `addf 0.1 0.2` is
//! 0.3, as in Loki.

/// `mant × 10^exp`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Decimal {
    mant: i128,
    exp: i32,
}

/// Digits kept before rounding an intermediate result that would overflow `i128`.
const MAX_MANT: i128 = 10i128.pow(36);

impl Decimal {
    /// `decimal.NewFromFloat`: the shortest decimal that reads back as `f`. `None` for NaN/Inf
    /// (sprig panics there; the caller reports an error).
    pub(crate) fn from_f64(f: f64) -> Option<Self> {
        if !f.is_finite() {
            return None;
        }
        let s = format!("{:e}", f);
        let (m, e) = s.split_once('e')?;
        let e: i32 = e.parse().ok()?;
        let neg = m.starts_with('-');
        let digits: String = m.chars().filter(char::is_ascii_digit).collect();
        let frac_len = m.split_once('.').map_or(0, |(_, f)| f.len()) as i32;
        let mant: i128 = digits.parse().ok()?;
        Some(
            Decimal {
                mant: if neg { -mant } else { mant },
                exp: e - frac_len,
            }
            .normalize(),
        )
    }

    fn normalize(mut self) -> Self {
        if self.mant == 0 {
            self.exp = 0;
            return self;
        }
        while self.mant % 10 == 0 {
            self.mant /= 10;
            self.exp += 1;
        }
        self
    }

    /// Drops low digits (half away from zero) until the mantissa is small.
    fn shrink(mut self) -> Self {
        while self.mant.abs() >= MAX_MANT {
            let r = self.mant % 10;
            self.mant /= 10;
            if r >= 5 {
                self.mant += 1;
            } else if r <= -5 {
                self.mant -= 1;
            }
            self.exp += 1;
        }
        self
    }

    /// Aligns two decimals to the smaller exponent, shrinking precision if needed.
    fn align(a: Self, b: Self) -> (i128, i128, i32) {
        let (mut a, mut b) = (a.shrink(), b.shrink());
        loop {
            if a.exp == b.exp {
                return (a.mant, b.mant, a.exp);
            }
            let (hi, lo) = if a.exp > b.exp {
                (&mut a, &mut b)
            } else {
                (&mut b, &mut a)
            };
            if let Some(m) = hi.mant.checked_mul(10).filter(|m| m.abs() < MAX_MANT * 10) {
                hi.mant = m;
                hi.exp -= 1;
            } else {
                // Cannot scale the larger one up: round the finer one down instead.
                lo.mant /= 10;
                lo.exp += 1;
            }
        }
    }

    pub(crate) fn add(self, o: Self) -> Self {
        let (a, b, exp) = Decimal::align(self, o);
        Decimal { mant: a + b, exp }.shrink().normalize()
    }

    pub(crate) fn sub(self, o: Self) -> Self {
        self.add(Decimal {
            mant: -o.mant,
            exp: o.exp,
        })
    }

    pub(crate) fn mul(self, o: Self) -> Self {
        let (mut a, mut b) = (self.shrink(), o.shrink());
        loop {
            if let Some(m) = a.mant.checked_mul(b.mant) {
                return Decimal {
                    mant: m,
                    exp: a.exp + b.exp,
                }
                .shrink()
                .normalize();
            }
            // Keep the product representable: drop a digit from the longer operand.
            if a.mant.abs() > b.mant.abs() {
                a = Decimal {
                    mant: a.mant / 10,
                    exp: a.exp + 1,
                };
            } else {
                b = Decimal {
                    mant: b.mant / 10,
                    exp: b.exp + 1,
                };
            }
        }
    }

    /// Quotient rounded to 16 decimal places (half away from zero); `None` on division by zero.
    pub(crate) fn div(self, o: Self) -> Option<Self> {
        if o.mant == 0 {
            return None;
        }
        const PLACES: i32 = 16;
        let (a, b) = (self.shrink(), o.shrink());
        // q = a.mant / b.mant * 10^(a.exp - b.exp); we want q scaled by 10^PLACES.
        let mut shift = a.exp - b.exp + PLACES;
        let mut num = a.mant;
        let mut den = b.mant;
        // Scale the numerator up as far as possible, then the denominator for the rest.
        while shift > 0 {
            match num.checked_mul(10) {
                Some(n) if n.abs() < MAX_MANT * 10 => {
                    num = n;
                    shift -= 1;
                }
                _ => break,
            }
        }
        let mut result_exp = -PLACES;
        if shift > 0 {
            // The quotient's low digits beyond i128 are below the 16th place anyway.
            result_exp += shift;
        }
        while shift < 0 {
            match den.checked_mul(10) {
                Some(d) => {
                    den = d;
                    shift += 1;
                }
                None => {
                    num /= 10;
                    shift += 1;
                }
            }
        }
        let q = num / den;
        let r = num % den;
        let mut q = q;
        if (r.abs()).checked_mul(2).is_none_or(|r2| r2 >= den.abs()) {
            q += if (num < 0) != (den < 0) { -1 } else { 1 };
        }
        Some(
            Decimal {
                mant: q,
                exp: result_exp,
            }
            .shrink()
            .normalize(),
        )
    }

    /// The nearest float.
    pub(crate) fn to_f64(self) -> f64 {
        format!("{}e{}", self.mant, self.exp).parse().unwrap_or(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(f: f64) -> Decimal {
        Decimal::from_f64(f).unwrap()
    }

    #[test]
    fn like_shopspring() {
        assert_eq!(d(0.1).add(d(0.2)).to_f64(), 0.3);
        assert_eq!(d(5.0).sub(d(1.5)).sub(d(3.0)).to_f64(), 0.5);
        assert_eq!(d(10.5).mul(d(0.5)).to_f64(), 5.25);
        assert_eq!(d(20.2).div(d(5.25)).unwrap().to_f64(), 3.8476190476190477);
        assert_eq!(d(1.0).div(d(3.0)).unwrap().to_f64(), 0.3333333333333333);
        assert!(d(1.0).div(d(0.0)).is_none());
        assert_eq!(d(1e300).mul(d(1e300)).to_f64(), f64::INFINITY);
        assert_eq!(d(-7.0).div(d(2.0)).unwrap().to_f64(), -3.5);
    }
}
