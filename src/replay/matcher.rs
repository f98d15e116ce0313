//! Comparing what the live peer says with one recorded turn, under `--ignore` and
//! `--carry` rules.
//!
//! Without rules this is a byte-for-byte comparison. A rule makes some spans compare
//! equal whatever they hold: the recorded turn is cut into literal bytes and spans that
//! a rule's regex matches (leftmost first, the earlier rule on a tie), and the live
//! bytes are walked alongside. A literal must be there byte for byte; at a recorded
//! span, the same rule must match the live bytes at the same place, and the two spans
//! are skipped, whatever their lengths. So after a `Date:` header of another length
//! the two streams go on at different offsets, and both are kept.
//!
//! Live bytes arrive in pieces, so the walk stops where it runs out of them and
//! resumes when more have come. A live span that reaches the end of what has come
//! may still grow (a header cut between two segments): it is taken as it is only
//! when the recorded span also ends the turn, since a peer that has said its turn
//! says nothing more until we answer.

use std::borrow::Cow;

use crate::cli::config::{Rule, RuleKind};

/// A recorded span a rule matches, with the rule's index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
    pub rule: usize,
}

/// How far the live bytes got against the recorded turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The live bytes so far agree with the recording; the turn needs more of them.
    NeedMore,
    /// The whole recorded turn was matched (the live bytes may go beyond it).
    Done,
    /// They differ at `position()`.
    Differs,
}

/// A recorded value and the live value that replaces it (`--carry`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Carried {
    pub recorded: Vec<u8>,
    pub live: Vec<u8>,
    pub rule: usize,
}

/// The bytes short of a rule's match past which a failed match is a difference,
/// not a match still on its way: a live span rarely outgrows its recorded one by
/// more.
const SLACK: usize = 256;

/// Every span the rules match in `bytes`: leftmost first, the earlier rule on a tie,
/// without overlaps. A match of no bytes is no span (it would skip nothing).
pub fn spans(rules: &[Rule], bytes: &[u8]) -> Vec<Span> {
    let mut found = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let next = rules
            .iter()
            .enumerate()
            .filter_map(|(rule, r)| {
                first_non_empty(&r.regex, bytes, at).map(|m| Span {
                    start: m.start(),
                    end: m.end(),
                    rule,
                })
            })
            .min_by_key(|span| span.start);
        let Some(span) = next else { break };
        found.push(span);
        at = span.end;
    }
    found
}

fn first_non_empty<'h>(
    regex: &regex::bytes::Regex,
    bytes: &'h [u8],
    from: usize,
) -> Option<regex::bytes::Match<'h>> {
    let mut at = from;
    while at <= bytes.len() {
        let m = regex.find_at(bytes, at)?;
        if !m.is_empty() {
            return Some(m);
        }
        at = m.start() + 1;
    }
    None
}

/// The walk of live bytes along one recorded turn (borrowed from the capture's
/// buffer when it can be: the player compares each segment where it was read).
pub struct TurnMatch<'r> {
    rules: &'r [Rule],
    recorded: Cow<'r, [u8]>,
    spans: Vec<Span>,
    next_span: usize,
    /// Where the walk is: in the recorded turn, and in the live bytes.
    recorded_at: usize,
    live_at: usize,
    /// Values `--carry` rules found, recorded and live, in the order met.
    pub carried: Vec<Carried>,
    /// How many spans each rule matched.
    pub used: Vec<u64>,
}

impl<'r> TurnMatch<'r> {
    pub fn new(rules: &'r [Rule], recorded: impl Into<Cow<'r, [u8]>>) -> Self {
        let recorded = recorded.into();
        let spans = spans(rules, &recorded);
        TurnMatch {
            rules,
            recorded,
            spans,
            next_span: 0,
            recorded_at: 0,
            live_at: 0,
            carried: Vec::new(),
            used: vec![0; rules.len()],
        }
    }

    pub fn recorded(&self) -> &[u8] {
        &self.recorded
    }

    /// Where the walk stands: (offset in the recorded turn, offset in the live bytes).
    pub fn position(&self) -> (usize, usize) {
        (self.recorded_at, self.live_at)
    }

    /// The live bytes still needed at least, when nothing but literals is left: a
    /// reader can take exactly that many and never read past the turn.
    pub fn literal_rest(&self, live: &[u8]) -> Option<usize> {
        (self.next_span == self.spans.len()).then(|| {
            (self.recorded.len() - self.recorded_at).saturating_sub(live.len() - self.live_at)
        })
    }

    /// Walks on through `live` (all the live bytes of the turn so far); `complete`
    /// when no more will come.
    pub fn advance(&mut self, live: &[u8], complete: bool) -> Step {
        loop {
            if self.recorded_at == self.recorded.len() {
                return Step::Done;
            }
            let step = match self.spans.get(self.next_span).copied() {
                Some(span) if span.start == self.recorded_at => self.span(span, live, complete),
                next => {
                    let end = next.map_or(self.recorded.len(), |s| s.start);
                    self.literal(end, live)
                }
            };
            if let Some(step) = step {
                return step;
            }
        }
    }

    /// Literal bytes up to `end`: `None` when all of them matched.
    fn literal(&mut self, end: usize, live: &[u8]) -> Option<Step> {
        let want = &self.recorded[self.recorded_at..end];
        let have = &live[self.live_at..];
        let n = want.len().min(have.len());
        let same = common_prefix(&want[..n], &have[..n]);
        self.recorded_at += same;
        self.live_at += same;
        if same < n {
            Some(Step::Differs)
        } else if n < want.len() {
            Some(Step::NeedMore)
        } else {
            None
        }
    }

    /// A recorded span: the same rule must match the live bytes right here.
    fn span(&mut self, span: Span, live: &[u8], complete: bool) -> Option<Step> {
        let regex = &self.rules[span.rule].regex;
        let found = regex.captures_at(live, self.live_at).filter(|c| {
            c.get(0)
                .is_some_and(|m| m.start() == self.live_at && !m.is_empty())
        });
        let Some(found) = found else {
            let short = live.len() - self.live_at < span.end - span.start + SLACK;
            return Some(if short && !complete {
                Step::NeedMore
            } else {
                Step::Differs
            });
        };
        let end = found.get(0).map_or(self.live_at, |m| m.end());
        if end == live.len() && !complete && span.end < self.recorded.len() {
            return Some(Step::NeedMore);
        }
        if self.rules[span.rule].kind == RuleKind::Carry {
            let recorded = regex
                .captures_at(&self.recorded, span.start)
                .and_then(|c| c.get(1))
                .map(|m| m.as_bytes().to_vec());
            if let (Some(recorded), Some(live)) = (recorded, found.get(1)) {
                if !recorded.is_empty() && recorded != live.as_bytes() {
                    self.carried.push(Carried {
                        recorded,
                        live: live.as_bytes().to_vec(),
                        rule: span.rule,
                    });
                }
            }
        }
        self.used[span.rule] += 1;
        self.recorded_at = span.end;
        self.live_at = end;
        self.next_span += 1;
        None
    }
}

/// How many bytes at the start of `a` and `b` (of one length) are the same. The
/// whole runs are compared at once (a `memcmp`, many bytes an instruction); only a
/// run that differs, which ends the replay, is walked byte by byte to find where.
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    if a == b {
        return a.len();
    }
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// `bytes` with every occurrence of each carried recorded value replaced by its live
/// value; the longest values first, so that one that contains another wins.
pub fn substitute(bytes: &[u8], carried: &[Carried]) -> Vec<u8> {
    let mut order: Vec<&Carried> = carried.iter().collect();
    order.sort_by_key(|c| std::cmp::Reverse(c.recorded.len()));
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    'bytes: while at < bytes.len() {
        for c in &order {
            if bytes[at..].starts_with(&c.recorded) {
                out.extend_from_slice(&c.live);
                at += c.recorded.len();
                continue 'bytes;
            }
        }
        out.push(bytes[at]);
        at += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(kind: RuleKind, pattern: &str) -> Rule {
        Rule {
            kind,
            regex: regex::bytes::Regex::new(pattern).unwrap(),
        }
    }

    fn walk(
        rules: &[Rule],
        recorded: &[u8],
        live: &[u8],
        complete: bool,
    ) -> (Step, (usize, usize)) {
        let mut m = TurnMatch::new(rules, recorded.to_vec());
        let step = m.advance(live, complete);
        (step, m.position())
    }

    #[test]
    fn without_rules_it_is_byte_for_byte() {
        assert_eq!(walk(&[], b"hello", b"hello", false), (Step::Done, (5, 5)));
        assert_eq!(walk(&[], b"hello", b"hel", false), (Step::NeedMore, (3, 3)));
        assert_eq!(
            walk(&[], b"hello", b"help!", false),
            (Step::Differs, (3, 3))
        );
        // What came beyond the turn is left for the caller.
        assert_eq!(walk(&[], b"hi", b"hi there", false), (Step::Done, (2, 2)));
    }

    #[test]
    fn a_long_literal_is_compared_whole_and_a_difference_found_exactly() {
        let recorded: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        // Live bytes in pieces, as reads bring them: each piece resumes the walk.
        let mut m = TurnMatch::new(&[], recorded.clone());
        for end in [1, 4096, 65536, 99_999] {
            assert_eq!(m.advance(&recorded[..end], false), Step::NeedMore);
            assert_eq!(m.position(), (end, end));
        }
        assert_eq!(m.advance(&recorded, false), Step::Done);
        for at in [0, 1, 4095, 65_536, 99_999] {
            let mut live = recorded.clone();
            live[at] ^= 0x40;
            let (step, position) = walk(&[], &recorded, &live, false);
            assert_eq!((step, position), (Step::Differs, (at, at)), "at {at}");
        }
    }

    #[test]
    fn an_ignored_span_may_change_length() {
        let rules = [rule(RuleKind::Ignore, r"Date: [^\r]*")];
        let recorded = b"HTTP/1.0 200 OK\r\nDate: Mon, 1 Jan\r\nServer: x\r\n\r\nbody";
        let live = b"HTTP/1.0 200 OK\r\nDate: Tuesday, 30 November\r\nServer: x\r\n\r\nbody";
        let (step, (r, l)) = walk(&rules, recorded, live, false);
        assert_eq!(step, Step::Done);
        assert_eq!((r, l), (recorded.len(), live.len()));
        // A difference after the span has an offset in each stream.
        let changed = b"HTTP/1.0 200 OK\r\nDate: Tuesday, 30 November\r\nServer: y\r\n\r\nbody";
        let (step, (r, l)) = walk(&rules, recorded, changed, false);
        assert_eq!(step, Step::Differs);
        assert_eq!(recorded[r], b'x');
        assert_eq!(changed[l], b'y');
        assert_eq!(l - r, 10);
    }

    #[test]
    fn a_span_at_the_end_of_what_came_waits_for_more() {
        let rules = [rule(RuleKind::Ignore, r"Date: [^\r]*")];
        let recorded = b"Date: Mon\r\nend";
        assert_eq!(
            walk(&rules, recorded, b"Date: Tue", false).0,
            Step::NeedMore
        );
        assert_eq!(walk(&rules, recorded, b"Da", false).0, Step::NeedMore);
        assert_eq!(
            walk(&rules, recorded, b"Date: Tue\r\nend", false).0,
            Step::Done
        );
        // Where the recorded span ends the turn, the live one does too.
        assert_eq!(
            walk(&rules, b"Date: Mon", b"Date: Tuesday", false).0,
            Step::Done
        );
        // Nothing like it, and no more to come: a difference.
        assert_eq!(walk(&rules, recorded, b"Dxxx", true).0, Step::Differs);
    }

    #[test]
    fn the_same_rule_must_match_in_both() {
        let rules = [
            rule(RuleKind::Ignore, r"a=\d+"),
            rule(RuleKind::Ignore, r"b=\d+"),
        ];
        assert_eq!(walk(&rules, b"a=1;", b"a=22;", true).0, Step::Done);
        assert_eq!(walk(&rules, b"a=1;", b"b=22;", true).0, Step::Differs);
        let spans = spans(&rules, b"b=1 a=2 b=3");
        let found: Vec<usize> = spans.iter().map(|s| s.rule).collect();
        assert_eq!(found, [1, 0, 1]);
    }

    #[test]
    fn a_carried_value_is_noted_and_substituted() {
        let rules = [rule(RuleKind::Carry, r"token=([0-9a-f]+)")];
        let mut m = TurnMatch::new(&rules, b"OK token=abc1\n".to_vec());
        assert_eq!(m.advance(b"OK token=ff0099\n", false), Step::Done);
        assert_eq!(
            m.carried,
            [Carried {
                recorded: b"abc1".to_vec(),
                live: b"ff0099".to_vec(),
                rule: 0
            }]
        );
        assert_eq!(m.used, [1]);
        let sent = substitute(b"USE abc1 abc12\n", &m.carried);
        assert_eq!(sent, b"USE ff0099 ff00992\n");
    }

    #[test]
    fn empty_matches_are_no_spans() {
        let rules = [rule(RuleKind::Ignore, r"x*")];
        assert_eq!(
            spans(&rules, b"abxxc"),
            [Span {
                start: 2,
                end: 4,
                rule: 0
            }]
        );
    }
}
