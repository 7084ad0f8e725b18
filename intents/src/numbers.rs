//! Spoken and written numbers and durations, over already tokenized words.
//!
//! Every parser consumes the whole span it is given or fails, so the matcher can try spans.

/// A parsed number; `fraction_only` marks bare fractions ("half", "a quarter") that mean a share
/// of the whole when the slot is a percentage ("half" → 50). "max"/"full" parse as +∞ and
/// "minimum"/"lowest" as −∞: validation turns them into the slot's bound, or refuses them for a
/// slot without one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpokenNumber {
    pub value: f64,
    pub fraction_only: bool,
}

/// Number words by value: the parser reads them here and spoken responses write them from here.
pub(crate) const ONES: [&str; 20] = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
];
pub(crate) const TENS: [&str; 10] =
    ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"];

fn position(words: &[&str], w: &str) -> Option<u64> {
    words.iter().position(|x| !x.is_empty() && *x == w).map(|i| i as u64)
}

fn unit_word(w: &str) -> Option<u64> {
    match w {
        "oh" | "nought" => Some(0),
        _ => position(&ONES[..10], w),
    }
}

fn teen_word(w: &str) -> Option<u64> {
    position(&ONES[10..], w).map(|i| i + 10)
}

fn tens_word(w: &str) -> Option<u64> {
    position(&TENS, w).map(|i| i * 10)
}

/// A number said as a word ("five", "twenty", "hundred").
pub fn is_number_word(w: &str) -> bool {
    unit_word(w).is_some() || teen_word(w).is_some() || tens_word(w).is_some() || w == "hundred" || w == "thousand"
}

/// Whether a span starting with this word could be a number; lets the matcher skip most spans.
pub fn may_start_number(w: &str) -> bool {
    is_number_word(w)
        || w.as_bytes().first().is_some_and(|b| b.is_ascii_digit())
        || matches!(w, "a" | "an" | "half" | "quarter" | "third" | "minus" | "negative")
        || extreme(w).is_some()
}

/// The ends of a range said in words: "max", "full", "minimum". ("min" is left out: it is
/// "minutes" as often.)
fn extreme(w: &str) -> Option<f64> {
    match w {
        "max" | "maximum" | "full" | "highest" => Some(f64::INFINITY),
        "minimum" | "lowest" => Some(f64::NEG_INFINITY),
        _ => None,
    }
}

/// Cardinal in words or digits: "twenty one", "one hundred and five", "a hundred", "21".
fn parse_cardinal(words: &[&str]) -> Option<u64> {
    if words.is_empty() {
        return None;
    }
    if words.len() == 1 && words[0].bytes().all(|b| b.is_ascii_digit()) {
        return words[0].parse().ok();
    }
    #[derive(PartialEq, Clone, Copy)]
    enum Last {
        Start,
        Unit,
        Teen,
        Tens,
        Hundred,
        Thousand,
        And,
    }
    let (mut total, mut current, mut last) = (0u64, 0u64, Last::Start);
    for (i, &w) in words.iter().enumerate() {
        if let Some(u) = unit_word(w) {
            if matches!(last, Last::Unit | Last::Teen) {
                return None;
            }
            current += u;
            last = Last::Unit;
        } else if let Some(t) = teen_word(w) {
            if matches!(last, Last::Unit | Last::Teen | Last::Tens) {
                return None;
            }
            current += t;
            last = Last::Teen;
        } else if let Some(t) = tens_word(w) {
            if matches!(last, Last::Unit | Last::Teen | Last::Tens) {
                return None;
            }
            current += t;
            last = Last::Tens;
        } else if w == "hundred" {
            if !matches!(last, Last::Unit | Last::Start) || current >= 10 {
                return None;
            }
            current = current.max(1) * 100;
            last = Last::Hundred;
        } else if w == "thousand" {
            if matches!(last, Last::And | Last::Thousand) {
                return None;
            }
            total += current.max(1) * 1000;
            current = 0;
            last = Last::Thousand;
        } else if (w == "a" || w == "an") && i == 0 && words.len() > 1 {
            // "a hundred", "a thousand": the article stands for one.
            if !matches!(words[1], "hundred" | "thousand") {
                return None;
            }
        } else if w == "and" && matches!(last, Last::Hundred | Last::Thousand) && i + 1 < words.len() {
            last = Last::And;
        } else {
            return None;
        }
    }
    if matches!(last, Last::And | Last::Start) {
        return None;
    }
    Some(total + current)
}

fn fraction(words: &[&str]) -> Option<f64> {
    match words {
        ["half"] | ["a", "half"] | ["one", "half"] => Some(0.5),
        ["quarter"] | ["a", "quarter"] | ["one", "quarter"] => Some(0.25),
        ["three", "quarters"] | ["three", "quarter"] => Some(0.75),
        ["third"] | ["a", "third"] | ["one", "third"] => Some(1.0 / 3.0),
        ["two", "thirds"] => Some(2.0 / 3.0),
        _ => None,
    }
}

/// Numbers as ASR writes them or people say them: "21.5", "twenty one and a half",
/// "twenty one point five", "half", "minus five".
pub fn parse_number(words: &[&str]) -> Option<SpokenNumber> {
    if words.is_empty() {
        return None;
    }
    if let ["minus" | "negative", rest @ ..] = words {
        let n = parse_number(rest)?;
        return Some(SpokenNumber { value: -n.value, fraction_only: false });
    }
    if let Some(f) = fraction(words) {
        return Some(SpokenNumber { value: f, fraction_only: true });
    }
    if let [w] = words {
        if let Some(value) = extreme(w) {
            return Some(SpokenNumber { value, fraction_only: false });
        }
    }
    if words.len() == 1 {
        let w = words[0];
        if w.contains('.') && w.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            return w.parse().ok().map(|value| SpokenNumber { value, fraction_only: false });
        }
    }
    // Integer part, then an optional fractional tail.
    for split in (1..=words.len()).rev() {
        let Some(int) = parse_cardinal(&words[..split]) else { continue };
        let tail = &words[split..];
        let frac = match tail {
            [] => Some(0.0),
            ["and", rest @ ..] => fraction(rest),
            ["point", digits @ ..] if !digits.is_empty() => {
                let mut s = String::from("0.");
                for d in digits {
                    if d.bytes().all(|b| b.is_ascii_digit()) {
                        s.push_str(d);
                    } else {
                        s.push(char::from(b'0' + unit_word(d)? as u8));
                    }
                }
                s.parse::<f64>().ok()
            }
            _ => None,
        };
        if let Some(frac) = frac {
            return Some(SpokenNumber { value: int as f64 + frac, fraction_only: false });
        }
    }
    None
}

fn unit_seconds(w: &str) -> Option<f64> {
    Some(match w {
        "second" | "seconds" | "sec" | "secs" | "s" => 1.0,
        "minute" | "minutes" | "min" | "mins" => 60.0,
        "hour" | "hours" | "hr" | "hrs" | "h" => 3600.0,
        _ => return None,
    })
}

/// One "<amount> <unit> [and a half]" group; "an hour", "half an hour", "a minute and a half".
fn parse_component(words: &[&str]) -> Option<f64> {
    match words {
        ["half", "an" | "a", unit] => return Some(unit_seconds(unit)? / 2.0),
        ["a", "quarter", "of", "an" | "a", unit] | ["quarter", "of", "an" | "a", unit] => {
            return Some(unit_seconds(unit)? / 4.0)
        }
        ["quarter", "hour"] | ["a", "quarter", "hour"] => return Some(900.0),
        // "three quarters of an hour", "a third of a minute"
        [share @ .., "of", "an" | "a", unit] => return Some(unit_seconds(unit)? * fraction(share)?),
        ["half", "hour"] | ["a", "half", "hour"] => return Some(1800.0),
        _ => {}
    }
    // "<amount> <unit> and a half"
    if let [head @ .., "and", "a", "half"] = words {
        return Some(parse_component(head)? * 1.5).filter(|_| head.len() >= 2 && matches!(head[0], "a" | "an" | "one"));
    }
    let (unit, amount) = words.split_last()?;
    let unit = unit_seconds(unit)?;
    let amount = match amount {
        ["a" | "an"] => 1.0,
        _ => parse_number(amount)?.value,
    };
    // "max minutes" is no duration.
    Some(amount * unit).filter(|s| s.is_finite())
}

/// Durations in seconds: "an hour and fifteen minutes" → 4500, "90 seconds", "one and a half hours",
/// "an hour and a half", "5 min".
pub fn parse_duration(words: &[&str]) -> Option<f64> {
    if words.is_empty() {
        return None;
    }
    if let Some(s) = parse_component(words) {
        return Some(s);
    }
    // Split after a unit word into a first component and the rest ("and" optional between).
    for i in 1..words.len() {
        if unit_seconds(words[i - 1]).is_none() {
            continue;
        }
        let Some(first) = parse_component(&words[..i]) else { continue };
        let rest = match &words[i..] {
            ["and", rest @ ..] => rest,
            rest => rest,
        };
        if let Some(second) = parse_duration(rest) {
            return Some(first + second);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(s: &str) -> Option<f64> {
        let w: Vec<&str> = s.split_whitespace().collect();
        parse_number(&w).map(|n| n.value)
    }

    fn dur(s: &str) -> Option<f64> {
        let w: Vec<&str> = s.split_whitespace().collect();
        parse_duration(&w)
    }

    #[test]
    fn spoken_and_written_numbers() {
        assert_eq!(num("twenty one and a half"), Some(21.5));
        assert_eq!(num("21.5"), Some(21.5));
        assert_eq!(num("twenty one point five"), Some(21.5));
        assert_eq!(num("seven"), Some(7.0));
        assert_eq!(num("ninety"), Some(90.0));
        assert_eq!(num("one hundred"), Some(100.0));
        assert_eq!(num("a hundred"), Some(100.0));
        assert_eq!(num("one hundred and five"), Some(105.0));
        assert_eq!(num("two thousand and twenty four"), Some(2024.0));
        assert_eq!(num("minus five"), Some(-5.0));
        assert_eq!(num("half"), Some(0.5));
        assert!(parse_number(&["half"]).unwrap().fraction_only);
        assert!(!parse_number(&["fifty"]).unwrap().fraction_only);
        assert_eq!(num("max"), Some(f64::INFINITY));
        assert_eq!(num("minimum"), Some(f64::NEG_INFINITY));
        assert_eq!(num("max five"), None);
    }

    #[test]
    fn malformed_numbers_are_rejected() {
        assert_eq!(num("one two"), None);
        assert_eq!(num("twenty thirty"), None);
        assert_eq!(num("twelve five"), None);
        assert_eq!(num("and"), None);
        assert_eq!(num("a"), None);
        assert_eq!(num("one hundred and"), None);
        assert_eq!(num("degrees"), None);
    }

    #[test]
    fn durations() {
        assert_eq!(dur("an hour and fifteen minutes"), Some(4500.0));
        assert_eq!(dur("five minutes"), Some(300.0));
        assert_eq!(dur("90 seconds"), Some(90.0));
        assert_eq!(dur("half an hour"), Some(1800.0));
        assert_eq!(dur("one and a half hours"), Some(5400.0));
        assert_eq!(dur("an hour and a half"), Some(5400.0));
        assert_eq!(dur("1 hour 15 minutes"), Some(4500.0));
        assert_eq!(dur("two minutes and thirty seconds"), Some(150.0));
        assert_eq!(dur("a quarter of an hour"), Some(900.0));
        assert_eq!(dur("three quarters of an hour"), Some(2700.0));
        assert_eq!(dur("five"), None);
        assert_eq!(dur("max minutes"), None);
        assert_eq!(dur("ten minute"), Some(600.0));
        assert_eq!(dur("minutes"), None);
    }
}
