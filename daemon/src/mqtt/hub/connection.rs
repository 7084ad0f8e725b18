//! The connection side of the hub: the event loop's task, what each incoming packet means for the
//! messages in flight, and how connection errors are told apart (refused for good vs. retried).

use super::*;

pub(super) async fn run_connection(shared: Arc<Shared>, mut eventloop: EventLoop) {
    let mut backoff = BACKOFF_START;
    loop {
        match eventloop.poll().await {
            Ok(event) => {
                if handle_event(&shared, event) {
                    backoff = BACKOFF_START;
                }
            }
            Err(e) => {
                on_connection_error(&shared, &mut eventloop, &e);
                if shared.shutting_down.load(Ordering::Relaxed) || matches!(e, ConnectionError::RequestsDone) {
                    break;
                }
                // Drop what expires during the wait, then wait.
                shared.wake_feeder.notify_one();
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(shared.reconnect_max);
            }
        }
    }
}

/// Returns true on a fresh connection.
fn handle_event(shared: &Shared, event: Event) -> bool {
    match event {
        Event::Incoming(Packet::ConnAck(_)) => {
            let mut state = shared.lock();
            shared.set_connected(&mut state, true);
            bump(&shared.counters.connects);
            tracing::info!(status_topic = %shared.status_topic, "MQTT connected");
            let filters = control_topics(&shared.site_id)
                .into_iter()
                .map(|topic| rumqttc::v5::mqttbytes::v5::Filter::new(topic, QoS::AtLeastOnce));
            if let Err(e) = shared.client.try_subscribe_many(filters) {
                tracing::error!(error = %e, "cannot subscribe to the MQTT control topics");
            }
            let online = shared.status_message("online");
            hand_off(shared, &mut state, online);
            feed(shared, &mut state);
            return true;
        }
        Event::Outgoing(Outgoing::Publish(pkid)) => {
            let mut state = shared.lock();
            let Some(msg) = state.handed.pop_front() else {
                tracing::warn!(pkid, "rumqttc wrote a PUBLISH the hub does not know about");
                return false;
            };
            if msg.qos == QoS::AtMostOnce {
                confirmed(shared, &msg);
                feed(shared, &mut state);
            } else {
                state.in_flight.push((pkid, msg));
            }
        }
        Event::Incoming(Packet::PubAck(ack)) => {
            let ok = matches!(ack.reason, PubAckReason::Success | PubAckReason::NoMatchingSubscribers);
            finish_in_flight(shared, ack.pkid, ok, &format!("{:?}", ack.reason));
        }
        Event::Incoming(Packet::PubRec(rec)) => {
            // QoS 2: once the broker has PUBREC'd, it owns the message and deduplicates it.
            let ok = matches!(rec.reason, PubRecReason::Success | PubRecReason::NoMatchingSubscribers);
            finish_in_flight(shared, rec.pkid, ok, &format!("{:?}", rec.reason));
        }
        Event::Incoming(Packet::Publish(publish)) => {
            let topic = String::from_utf8_lossy(&publish.topic).into_owned();
            if publish.retain {
                // A retained command would replay at every reconnect (a reload or a session
                // start each time the network blips): controls act once, when sent.
                tracing::info!(%topic, "retained control message ignored");
                return false;
            }
            match parse_control(&topic, &publish.payload, &shared.site_id) {
                Ok(Some(message)) => {
                    tracing::info!(%topic, ?message, "MQTT control message");
                    if shared.control_tx.try_send(message).is_err() {
                        bump(&shared.counters.control_dropped);
                        tracing::warn!(%topic, "control message dropped: the pipeline is not taking them");
                    }
                }
                Ok(None) => tracing::debug!(%topic, "control message for another site ignored"),
                Err(e) => {
                    bump(&shared.counters.malformed_control);
                    tracing::warn!(error = %e, "malformed MQTT control message ignored");
                }
            }
        }
        Event::Incoming(Packet::Disconnect(d)) => {
            tracing::warn!(reason = ?d.reason_code, "the MQTT broker is disconnecting us");
        }
        Event::Incoming(Packet::SubAck(ack)) => {
            tracing::debug!(reasons = ?ack.return_codes, "MQTT control topics subscribed");
        }
        _ => {}
    }
    false
}

fn finish_in_flight(shared: &Shared, pkid: u16, ok: bool, reason: &str) {
    let mut state = shared.lock();
    let Some(pos) = state.in_flight.iter().position(|(id, _)| *id == pkid) else {
        tracing::debug!(pkid, "acknowledgement for a packet the hub no longer tracks");
        return;
    };
    let (_, msg) = state.in_flight.remove(pos);
    if ok {
        confirmed(shared, &msg);
    } else {
        bump(&shared.counters.rejected);
        tracing::warn!(topic = %msg.topic, kind = ?msg.kind, reason, "the MQTT broker refused a message");
        shared.progress.notify_waiters();
    }
    feed(shared, &mut state);
}

fn confirmed(shared: &Shared, msg: &Outbound) {
    bump(&shared.counters.published);
    if let Kind::Action { id } = msg.kind {
        bump(&shared.counters.actions_published);
        tracing::info!(topic = %msg.topic, action_id = %shared.action_id(id), "action published");
    }
    shared.progress.notify_waiters();
}

fn on_connection_error(shared: &Shared, eventloop: &mut EventLoop, error: &ConnectionError) {
    let mut state = shared.lock();
    // Under the lock, so the feeder cannot add a request between the drain and the requeue.
    eventloop.clean();
    eventloop.pending.clear();
    // A PUBLISH whose flush failed still left its event behind: it may have reached the broker,
    // so it counts as written (a possible duplicate), not as never sent.
    for event in eventloop.state.events.drain(..) {
        if let Event::Outgoing(Outgoing::Publish(pkid)) = event {
            if let Some(msg) = state.handed.pop_front() {
                if msg.qos != QoS::AtMostOnce {
                    state.in_flight.push((pkid, msg));
                }
            }
        }
    }

    let in_flight = std::mem::take(&mut state.in_flight);
    let handed = std::mem::take(&mut state.handed);
    let mut again = Vec::with_capacity(in_flight.len() + handed.len());
    for (pkid, msg) in in_flight {
        if msg.kind == Kind::Status {
            continue;
        }
        bump(&shared.counters.resent);
        tracing::warn!(pkid, topic = %msg.topic, kind = ?msg.kind,
            "connection lost before PUBACK: will send again (the broker may already have it)");
        again.push(msg);
    }
    again.extend(handed.into_iter().filter(|m| m.kind != Kind::Status));
    count_overflow(shared, state.queue.requeue_front(again));

    if shared.shutting_down.load(Ordering::Relaxed) {
        tracing::debug!(%error, "MQTT connection closed at shutdown");
    } else if state.connected {
        bump(&shared.counters.connection_losses);
        tracing::warn!(%error, queued = state.queue.len(), "MQTT connection lost; reconnecting");
    } else {
        tracing::warn!(%error, queued = state.queue.len(), "cannot connect to the MQTT broker; retrying");
    }
    shared.set_connected(&mut state, false);
    shared.progress.notify_waiters();
}
