//! The bounded queue of outbound messages waiting for the broker.
//!
//! Policy when full: the oldest waiting *event* is dropped first (a stale "hotword detected" is
//! worth less than a command), else the oldest action. Every drop is logged and counted; the
//! newest message is always accepted, because it is the one least likely to be stale.

use std::collections::VecDeque;
use std::time::Instant;

use bytes::Bytes;
use rumqttc::v5::mqttbytes::QoS;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A Hermes event.
    Event,
    /// A validated intent's action. `id` numbers actions per hub; with the hub's start time it
    /// forms the MQTT 5 user property `sotto-action-id`, so a consumer can drop the rare QoS 1
    /// duplicate (see `hub.rs`).
    Action { id: u64 },
    /// `sotto/<site>/status`: published directly on (re)connect, never queued.
    Status,
    /// `sotto/<site>/metrics…`: figures for monitoring and benchmarks; queued and dropped like an
    /// event, never printed (print mode shows the dialogue, not its bookkeeping).
    Metrics,
}

#[derive(Debug, Clone)]
pub struct Outbound {
    pub kind: Kind,
    pub topic: String,
    pub payload: Bytes,
    pub qos: QoS,
    pub retain: bool,
    /// After this instant the message is not worth delivering (and the broker is told the rest).
    pub expires_at: Instant,
}

impl Outbound {
    pub fn is_action(&self) -> bool {
        matches!(self.kind, Kind::Action { .. })
    }
}

pub struct OutboundQueue {
    items: VecDeque<Outbound>,
    capacity: usize,
}

impl OutboundQueue {
    pub fn new(capacity: usize) -> Self {
        OutboundQueue { items: VecDeque::with_capacity(capacity.min(1024)), capacity: capacity.max(1) }
    }

    /// Appends `msg`; returns the message dropped to make room, if any.
    #[must_use]
    pub fn push(&mut self, msg: Outbound) -> Option<Outbound> {
        let dropped = if self.items.len() >= self.capacity {
            let victim = self.items.iter().position(|m| !m.is_action()).unwrap_or(0);
            self.items.remove(victim)
        } else {
            None
        };
        self.items.push_back(msg);
        dropped
    }

    /// Puts messages that were handed to the client but not confirmed back at the front, in their
    /// original order, ahead of newer ones. Returns what no longer fits, chosen by the same policy
    /// as `push` (oldest event, else oldest action).
    #[must_use]
    pub fn requeue_front(&mut self, msgs: Vec<Outbound>) -> Vec<Outbound> {
        for msg in msgs.into_iter().rev() {
            self.items.push_front(msg);
        }
        let mut dropped = Vec::new();
        while self.items.len() > self.capacity {
            let victim = self.items.iter().position(|m| !m.is_action()).unwrap_or(0);
            dropped.extend(self.items.remove(victim));
        }
        dropped
    }

    pub fn pop(&mut self) -> Option<Outbound> {
        self.items.pop_front()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn msg(kind: Kind, topic: &str) -> Outbound {
        Outbound {
            kind,
            topic: topic.into(),
            payload: Bytes::new(),
            qos: QoS::AtLeastOnce,
            retain: false,
            expires_at: Instant::now() + Duration::from_secs(10),
        }
    }

    fn topics(q: &mut OutboundQueue) -> Vec<String> {
        std::iter::from_fn(|| q.pop()).map(|m| m.topic).collect()
    }

    #[test]
    fn full_queue_drops_oldest_event_before_any_action() {
        let mut q = OutboundQueue::new(3);
        assert!(q.push(msg(Kind::Action { id: 1 }, "a1")).is_none());
        assert!(q.push(msg(Kind::Event, "e1")).is_none());
        assert!(q.push(msg(Kind::Action { id: 2 }, "a2")).is_none());
        assert_eq!(q.push(msg(Kind::Action { id: 3 }, "a3")).unwrap().topic, "e1");
        assert_eq!(q.push(msg(Kind::Action { id: 4 }, "a4")).unwrap().topic, "a1");
        assert_eq!(topics(&mut q), ["a2", "a3", "a4"]);
    }

    #[test]
    fn requeued_messages_go_first_and_overflow_drops_the_oldest() {
        let mut q = OutboundQueue::new(3);
        assert!(q.push(msg(Kind::Action { id: 3 }, "a3")).is_none());
        assert!(q.push(msg(Kind::Action { id: 4 }, "a4")).is_none());
        let dropped = q.requeue_front(vec![msg(Kind::Action { id: 1 }, "a1"), msg(Kind::Action { id: 2 }, "a2")]);
        assert_eq!(dropped.iter().map(|m| m.topic.as_str()).collect::<Vec<_>>(), ["a1"]);
        assert_eq!(topics(&mut q), ["a2", "a3", "a4"]);
    }
}
