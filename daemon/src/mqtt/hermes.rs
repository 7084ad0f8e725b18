//! Hermes protocol events (the MQTT vocabulary of Snips and Rhasspy), so tools written for those
//! assistants can listen to Sotto. Field names are spelled exactly as in Hermes (camelCase);
//! optional fields are left out of the JSON when unset, as Rhasspy does for most of them.

use serde::{Deserialize, Serialize};

/// `hermes/hotword/<wakewordId>/detected`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HotwordDetected {
    /// The wake word id, also the topic level (e.g. `hey_jarvis`).
    #[serde(skip)]
    pub wakeword_id: String,
    pub model_id: String,
    #[serde(default)]
    pub model_version: String,
    /// `"personal"` or `"universal"`; openWakeWord models are universal.
    pub model_type: String,
    pub current_sensitivity: f32,
    pub site_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
}

/// `hermes/asr/textCaptured`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TextCaptured {
    pub text: String,
    /// Transcription confidence in 0..=1.
    pub likelihood: f32,
    /// Duration of the transcribed audio.
    pub seconds: f32,
    pub site_id: String,
    pub session_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wakeword_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IntentInfo {
    pub intent_name: String,
    pub confidence_score: f32,
}

/// `value` of a slot: `{"kind": "Number", "value": 2}` and the like.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlotValue {
    pub kind: String,
    pub value: serde_json::Value,
}

/// Character range of a slot's raw value in `input`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotRange {
    pub start: usize,
    pub end: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Slot {
    pub slot_name: String,
    pub entity: String,
    pub raw_value: String,
    pub value: SlotValue,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub range: Option<SlotRange>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f32>,
}

/// `hermes/intent/<intentName>`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IntentRecognized {
    pub input: String,
    pub intent: IntentInfo,
    pub slots: Vec<Slot>,
    pub site_id: String,
    pub session_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_data: Option<String>,
}

impl IntentRecognized {
    /// The Hermes form of an understood intent: slots with their schema entity and a Hermes value
    /// kind (`Number` for numbers, `Custom` for enum and text values).
    pub fn from_resolution(
        text: &str,
        resolution: &sotto_intents::Resolution,
        intents: &sotto_intents::Intents,
        site_id: &str,
        session_id: Option<String>,
    ) -> Self {
        let intent = resolution.intent.as_deref().and_then(|name| intents.intent(name));
        let slots = resolution
            .slots
            .iter()
            .map(|(name, value)| {
                let entity = intent.and_then(|i| i.slot(name)).map_or("unknown", |s| s.kind.type_name());
                let kind = match value {
                    sotto_intents::SlotValue::Int(_) | sotto_intents::SlotValue::Num(_) => "Number",
                    sotto_intents::SlotValue::Str(_) => "Custom",
                };
                Slot {
                    slot_name: name.clone(),
                    entity: entity.to_string(),
                    raw_value: value.as_text(),
                    value: SlotValue { kind: kind.into(), value: value.to_json() },
                    range: None,
                    confidence: None,
                }
            })
            .collect();
        IntentRecognized {
            input: text.to_string(),
            intent: IntentInfo {
                intent_name: resolution.intent.clone().unwrap_or_default(),
                confidence_score: resolution.confidence,
            },
            slots,
            site_id: site_id.to_string(),
            session_id,
            custom_data: None,
        }
    }
}

/// `hermes/nlu/intentNotRecognized`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IntentNotRecognized {
    pub input: String,
    pub site_id: String,
    pub session_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_data: Option<String>,
}

/// `hermes/dialogueManager/sessionStarted`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionStarted {
    pub session_id: String,
    pub site_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_data: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
}

/// Why a session ended; Hermes spells the reasons in camelCase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TerminationReason {
    Nominal,
    AbortedByUser,
    IntentNotRecognized,
    Timeout,
    Error,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Termination {
    pub reason: TerminationReason,
    /// Set with `reason: error`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `hermes/dialogueManager/sessionEnded`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionEnded {
    pub session_id: String,
    pub site_id: String,
    pub termination: Termination,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_data: Option<String>,
}

/// `hermes/tts/say`: what Sotto asks another system to speak when it has no voice of its own
/// (`tts.enabled = false`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TtsSay {
    pub text: String,
    pub site_id: String,
    pub id: String,
    pub session_id: Option<String>,
    pub lang: Option<String>,
}

/// `hermes/tts/sayFinished`: the text of a `hermes/tts/say` request has been spoken.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SayFinished {
    pub id: Option<String>,
    pub site_id: String,
    pub session_id: Option<String>,
}

/// Everything the pipeline announces on the Hermes topics.
#[derive(Debug, Clone, PartialEq)]
pub enum HermesEvent {
    HotwordDetected(HotwordDetected),
    TextCaptured(TextCaptured),
    Intent(IntentRecognized),
    IntentNotRecognized(IntentNotRecognized),
    SessionStarted(SessionStarted),
    SessionEnded(SessionEnded),
    TtsSay(TtsSay),
    SayFinished(SayFinished),
}

impl HermesEvent {
    pub fn topic(&self) -> String {
        match self {
            HermesEvent::HotwordDetected(e) => format!("hermes/hotword/{}/detected", e.wakeword_id),
            HermesEvent::TextCaptured(_) => "hermes/asr/textCaptured".into(),
            HermesEvent::Intent(e) => format!("hermes/intent/{}", e.intent.intent_name),
            HermesEvent::IntentNotRecognized(_) => "hermes/nlu/intentNotRecognized".into(),
            HermesEvent::SessionStarted(_) => "hermes/dialogueManager/sessionStarted".into(),
            HermesEvent::SessionEnded(_) => "hermes/dialogueManager/sessionEnded".into(),
            HermesEvent::TtsSay(_) => "hermes/tts/say".into(),
            HermesEvent::SayFinished(_) => "hermes/tts/sayFinished".into(),
        }
    }

    pub fn payload(&self) -> serde_json::Value {
        // Serialising these plain structs cannot fail (string keys, no maps with non-string keys).
        let value = match self {
            HermesEvent::HotwordDetected(e) => serde_json::to_value(e),
            HermesEvent::TextCaptured(e) => serde_json::to_value(e),
            HermesEvent::Intent(e) => serde_json::to_value(e),
            HermesEvent::IntentNotRecognized(e) => serde_json::to_value(e),
            HermesEvent::SessionStarted(e) => serde_json::to_value(e),
            HermesEvent::SessionEnded(e) => serde_json::to_value(e),
            HermesEvent::TtsSay(e) => serde_json::to_value(e),
            HermesEvent::SayFinished(e) => serde_json::to_value(e),
        };
        value.expect("Hermes events serialise to JSON")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn intent_event_matches_the_hermes_shape() {
        let event = HermesEvent::Intent(IntentRecognized {
            input: "set a timer for 5 minutes".into(),
            intent: IntentInfo { intent_name: "SetTimer".into(), confidence_score: 0.75 },
            slots: vec![Slot {
                slot_name: "duration".into(),
                entity: "sotto/duration".into(),
                raw_value: "5 minutes".into(),
                value: SlotValue { kind: "Duration".into(), value: json!(300) },
                range: Some(SlotRange { start: 16, end: 25 }),
                confidence: None,
            }],
            site_id: "kitchen".into(),
            session_id: Some("s-1".into()),
            custom_data: None,
        });
        assert_eq!(event.topic(), "hermes/intent/SetTimer");
        assert_eq!(
            event.payload(),
            json!({
                "input": "set a timer for 5 minutes",
                "intent": {"intentName": "SetTimer", "confidenceScore": 0.75},
                "slots": [{
                    "slotName": "duration", "entity": "sotto/duration", "rawValue": "5 minutes",
                    "value": {"kind": "Duration", "value": 300}, "range": {"start": 16, "end": 25}
                }],
                "siteId": "kitchen",
                "sessionId": "s-1"
            })
        );
    }

    #[test]
    fn other_topics_and_field_names() {
        let hotword = HermesEvent::HotwordDetected(HotwordDetected {
            wakeword_id: "hey_jarvis".into(),
            model_id: "hey_jarvis".into(),
            model_version: String::new(),
            model_type: "universal".into(),
            current_sensitivity: 0.5,
            site_id: "default".into(),
            session_id: None,
            lang: None,
        });
        assert_eq!(hotword.topic(), "hermes/hotword/hey_jarvis/detected");
        assert_eq!(
            hotword.payload(),
            json!({"modelId": "hey_jarvis", "modelVersion": "", "modelType": "universal",
                   "currentSensitivity": 0.5, "siteId": "default"})
        );

        let text = HermesEvent::TextCaptured(TextCaptured {
            text: "hello".into(),
            likelihood: 0.5,
            seconds: 1.5,
            site_id: "default".into(),
            session_id: Some("s".into()),
            wakeword_id: None,
            lang: None,
        });
        assert_eq!(text.topic(), "hermes/asr/textCaptured");
        assert_eq!(
            text.payload(),
            json!({"text": "hello", "likelihood": 0.5, "seconds": 1.5, "siteId": "default", "sessionId": "s"})
        );

        let ended = HermesEvent::SessionEnded(SessionEnded {
            session_id: "s".into(),
            site_id: "default".into(),
            termination: Termination { reason: TerminationReason::IntentNotRecognized, error: None },
            custom_data: None,
        });
        assert_eq!(ended.topic(), "hermes/dialogueManager/sessionEnded");
        assert_eq!(
            ended.payload(),
            json!({"sessionId": "s", "siteId": "default", "termination": {"reason": "intentNotRecognized"}})
        );

        let started = HermesEvent::SessionStarted(SessionStarted {
            session_id: "s".into(),
            site_id: "default".into(),
            custom_data: None,
            lang: None,
        });
        assert_eq!(started.topic(), "hermes/dialogueManager/sessionStarted");
        assert_eq!(started.payload(), json!({"sessionId": "s", "siteId": "default"}));

        let not_recognized = HermesEvent::IntentNotRecognized(IntentNotRecognized {
            input: "blah".into(),
            site_id: "default".into(),
            session_id: None,
            custom_data: None,
        });
        assert_eq!(not_recognized.topic(), "hermes/nlu/intentNotRecognized");
        assert_eq!(not_recognized.payload(), json!({"input": "blah", "siteId": "default", "sessionId": null}));
    }
}
