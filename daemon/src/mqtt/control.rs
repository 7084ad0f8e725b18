//! Incoming control messages: the topics the hub subscribes to and how their payloads parse.
//!
//! | topic | payload | message |
//! |---|---|---|
//! | `sotto/<site>/mute`, `…/unmute`, `…/reload` | empty, or a JSON object (fields ignored) | `Mute`, `Unmute`, `Reload` |
//! | `hermes/hotword/toggleOff`, `…/toggleOn` | Hermes `{siteId, reason?}` | `Mute`, `Unmute` |
//! | `hermes/dialogueManager/startSession` | Hermes `{siteId?, init{type, …}, customData?}` | `StartSession` |
//! | `hermes/dialogueManager/continueSession` | Hermes `{sessionId, text?, intentFilter?, sendIntentNotRecognized?}` | `ContinueSession` |
//! | `hermes/dialogueManager/endSession` | Hermes `{sessionId, text?}` | `EndSession` |
//! | `hermes/tts/say` | Hermes `{text, siteId?, id?, sessionId?, lang?}` | `Say` |
//!
//! Hermes messages for another `siteId` are not ours and are skipped silently (Hermes `siteId`
//! defaults to `"default"` when absent). `continueSession` and `endSession` carry no site: the
//! dialogue keeps those whose `sessionId` is one of its own. Anything else that does not parse is malformed.
//! Retained messages on these topics are ignored by the hub: a command acts when it is sent, not
//! again at every reconnect.

use serde::Deserialize;

use super::MqttError;

#[derive(Debug, Clone, PartialEq)]
pub enum ControlMessage {
    /// Stop listening for the wake word until `Unmute`.
    Mute,
    Unmute,
    /// Re-read the configuration file (a bad one is refused, the old one keeps running).
    Reload,
    /// Open a session as if the wake word had been heard.
    StartSession(StartSession),
    /// Speak a text in the session, then listen for the next turn without a wake word.
    ContinueSession(ContinueSession),
    /// Speak a text (if any) and end the session.
    EndSession {
        session_id: String,
        text: Option<String>,
    },
    /// Speak a text, then answer `hermes/tts/sayFinished`.
    Say(SayRequest),
}

/// `hermes/dialogueManager/continueSession`, as Hermes spells it.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContinueSession {
    pub session_id: String,
    pub text: Option<String>,
    /// Only these intents may be recognised in the next turn (None: all).
    pub intent_filter: Option<Vec<String>>,
    /// Publish `hermes/nlu/intentNotRecognized` and keep the session open for the caller's next
    /// move, rather than ending it.
    #[serde(default)]
    pub send_intent_not_recognized: bool,
}

/// `hermes/tts/say`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SayRequest {
    pub text: String,
    pub id: Option<String>,
    pub session_id: Option<String>,
}

/// `hermes/dialogueManager/startSession`, the parts the pipeline uses.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StartSession {
    pub custom_data: Option<String>,
    /// Only these intents may be recognised in this session (None: all).
    pub intent_filter: Option<Vec<String>>,
    /// Publish `hermes/nlu/intentNotRecognized` rather than ending the session silently.
    pub send_intent_not_recognized: bool,
    /// `init.type`: `action` opens a listening session; `notification` only announces `text`.
    pub kind: SessionKind,
    pub text: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub enum SessionKind {
    #[default]
    Action,
    Notification,
}

/// The topic filters the hub subscribes to for `site`.
pub fn control_topics(site: &str) -> Vec<String> {
    vec![
        format!("sotto/{site}/mute"),
        format!("sotto/{site}/unmute"),
        format!("sotto/{site}/reload"),
        "hermes/hotword/toggleOff".into(),
        "hermes/hotword/toggleOn".into(),
        "hermes/dialogueManager/startSession".into(),
        "hermes/dialogueManager/continueSession".into(),
        "hermes/dialogueManager/endSession".into(),
        "hermes/tts/say".into(),
    ]
}

fn default_site() -> String {
    "default".into()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HermesToggle {
    #[serde(default = "default_site")]
    site_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HermesStartSession {
    #[serde(default = "default_site")]
    site_id: String,
    init: HermesSessionInit,
    custom_data: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HermesSessionInit {
    #[serde(rename = "type")]
    kind: SessionKind,
    text: Option<String>,
    intent_filter: Option<Vec<String>>,
    #[serde(default)]
    send_intent_not_recognized: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HermesEndSession {
    session_id: String,
    text: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HermesSay {
    text: String,
    #[serde(default = "default_site")]
    site_id: String,
    id: Option<String>,
    session_id: Option<String>,
}

/// `Ok(None)`: a well-formed message for another site. `Err`: malformed, with the reason.
pub fn parse_control(topic: &str, payload: &[u8], site: &str) -> Result<Option<ControlMessage>, MqttError> {
    let malformed = |reason: String| MqttError::MalformedControl { topic: topic.to_string(), reason };
    let text = std::str::from_utf8(payload).map_err(|e| malformed(format!("payload is not UTF-8: {e}")))?;

    if let Some(verb) =
        topic.strip_prefix("sotto/").and_then(|rest| rest.strip_prefix(site)).and_then(|r| r.strip_prefix('/'))
    {
        let message = match verb {
            "mute" => ControlMessage::Mute,
            "unmute" => ControlMessage::Unmute,
            "reload" => ControlMessage::Reload,
            _ => return Err(malformed("unknown control verb".into())),
        };
        if !text.trim().is_empty() {
            let value: serde_json::Value =
                serde_json::from_str(text).map_err(|e| malformed(format!("payload is neither empty nor JSON: {e}")))?;
            if !value.is_object() {
                return Err(malformed(format!("payload must be empty or a JSON object, got {value}")));
            }
        }
        return Ok(Some(message));
    }

    let json_err = |e: serde_json::Error| malformed(format!("invalid Hermes payload: {e}"));
    match topic {
        "hermes/hotword/toggleOff" | "hermes/hotword/toggleOn" => {
            let toggle: HermesToggle = serde_json::from_str(text).map_err(json_err)?;
            if toggle.site_id != site {
                return Ok(None);
            }
            Ok(Some(if topic.ends_with("toggleOff") { ControlMessage::Mute } else { ControlMessage::Unmute }))
        }
        "hermes/dialogueManager/startSession" => {
            let start: HermesStartSession = serde_json::from_str(text).map_err(json_err)?;
            if start.site_id != site {
                return Ok(None);
            }
            Ok(Some(ControlMessage::StartSession(StartSession {
                custom_data: start.custom_data,
                intent_filter: start.init.intent_filter,
                send_intent_not_recognized: start.init.send_intent_not_recognized,
                kind: start.init.kind,
                text: start.init.text,
            })))
        }
        "hermes/dialogueManager/continueSession" => {
            Ok(Some(ControlMessage::ContinueSession(serde_json::from_str(text).map_err(json_err)?)))
        }
        "hermes/dialogueManager/endSession" => {
            let e: HermesEndSession = serde_json::from_str(text).map_err(json_err)?;
            Ok(Some(ControlMessage::EndSession { session_id: e.session_id, text: e.text }))
        }
        "hermes/tts/say" => {
            let say: HermesSay = serde_json::from_str(text).map_err(json_err)?;
            if say.site_id != site {
                return Ok(None);
            }
            Ok(Some(ControlMessage::Say(SayRequest { text: say.text, id: say.id, session_id: say.session_id })))
        }
        _ => Err(malformed("not a control topic".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(topic: &str, payload: &str) -> Result<Option<ControlMessage>, String> {
        parse_control(topic, payload.as_bytes(), "kitchen").map_err(|e| e.to_string())
    }

    #[test]
    fn site_verbs_accept_empty_or_object_payloads() {
        assert_eq!(parse("sotto/kitchen/mute", ""), Ok(Some(ControlMessage::Mute)));
        assert_eq!(parse("sotto/kitchen/unmute", "{}"), Ok(Some(ControlMessage::Unmute)));
        assert_eq!(parse("sotto/kitchen/reload", r#"{"why": "edited"}"#), Ok(Some(ControlMessage::Reload)));
    }

    #[test]
    fn malformed_payloads_name_the_reason() {
        let e = parse("sotto/kitchen/mute", "yes please").unwrap_err();
        assert!(e.contains("sotto/kitchen/mute") && e.contains("neither empty nor JSON"), "{e}");
        let e = parse("sotto/kitchen/mute", "[1]").unwrap_err();
        assert!(e.contains("JSON object"), "{e}");
        let e = parse_control("sotto/kitchen/reload", &[0xff, 0xfe], "kitchen").unwrap_err().to_string();
        assert!(e.contains("UTF-8"), "{e}");
        let e = parse("hermes/dialogueManager/startSession", r#"{"siteId": "kitchen"}"#).unwrap_err();
        assert!(e.contains("init"), "{e}");
        let e = parse("hermes/dialogueManager/startSession", r#"{"siteId": "kitchen", "init": {"type": "dance"}}"#)
            .unwrap_err();
        assert!(e.contains("dance"), "{e}");
    }

    #[test]
    fn hermes_start_session_and_toggles() {
        let msg = parse(
            "hermes/dialogueManager/startSession",
            r#"{"siteId": "kitchen", "customData": "x", "init": {"type": "action", "intentFilter": ["SetTimer"],
                "sendIntentNotRecognized": true, "canBeEnqueued": true}}"#,
        )
        .unwrap();
        assert_eq!(
            msg,
            Some(ControlMessage::StartSession(StartSession {
                custom_data: Some("x".into()),
                intent_filter: Some(vec!["SetTimer".into()]),
                send_intent_not_recognized: true,
                kind: SessionKind::Action,
                text: None,
            }))
        );
        assert_eq!(
            parse("hermes/hotword/toggleOff", r#"{"siteId": "kitchen", "reason": ""}"#),
            Ok(Some(ControlMessage::Mute))
        );
        assert_eq!(parse("hermes/hotword/toggleOn", r#"{"siteId": "kitchen"}"#), Ok(Some(ControlMessage::Unmute)));
    }

    #[test]
    fn other_sites_are_not_ours() {
        assert_eq!(parse("hermes/tts/say", r#"{"text": "hello", "siteId": "hall"}"#), Ok(None));
        // Hermes defaults siteId to "default", which is not "kitchen".
        assert_eq!(parse("hermes/hotword/toggleOff", "{}"), Ok(None));
        assert_eq!(
            parse("hermes/dialogueManager/startSession", r#"{"siteId": "hall", "init": {"type": "action"}}"#),
            Ok(None)
        );
    }

    #[test]
    fn dialogue_manager_and_tts_messages_parse() {
        assert_eq!(
            parse("hermes/tts/say", r#"{"text": "Press 2 is running", "siteId": "kitchen", "id": "a1", "lang": "en"}"#),
            Ok(Some(ControlMessage::Say(SayRequest {
                text: "Press 2 is running".into(),
                id: Some("a1".into()),
                session_id: None
            })))
        );
        assert_eq!(
            parse("hermes/dialogueManager/endSession", r#"{"sessionId": "s-1", "text": "Done."}"#),
            Ok(Some(ControlMessage::EndSession { session_id: "s-1".into(), text: Some("Done.".into()) }))
        );
        assert_eq!(
            parse(
                "hermes/dialogueManager/continueSession",
                r#"{"sessionId": "s-1", "text": "Which press?", "intentFilter": ["machine.stop"], "sendIntentNotRecognized": true}"#
            ),
            Ok(Some(ControlMessage::ContinueSession(ContinueSession {
                session_id: "s-1".into(),
                text: Some("Which press?".into()),
                intent_filter: Some(vec!["machine.stop".into()]),
                send_intent_not_recognized: true,
            })))
        );
        for (topic, payload) in [
            ("hermes/tts/say", r#"{"siteId": "kitchen"}"#),
            ("hermes/dialogueManager/endSession", r#"{"text": "no session"}"#),
            ("hermes/dialogueManager/continueSession", "[]"),
        ] {
            let e = parse(topic, payload).unwrap_err();
            assert!(e.contains(topic) && e.contains("invalid Hermes payload"), "{e}");
        }
    }
}
