//! Sotto's openWakeWord scores equal the Python reference's (tools/oww_reference.py) within 0.02
//! at every frame of every 16 kHz fixture, for every shipped wake word.

mod common;

use std::collections::BTreeMap;

use sotto_audio::{read_wav, OpenWakeWord, TriggerConfig};

#[derive(serde::Deserialize)]
struct Reference {
    chunk: usize,
    files: BTreeMap<String, BTreeMap<String, Vec<f32>>>,
}

#[test]
fn scores_match_the_python_reference_at_every_frame() {
    let models = common::models(&TriggerConfig::default());
    let path = common::fixtures().join("oww_reference.json");
    let reference: Reference = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(reference.chunk, sotto_audio::FRAME);
    assert!(reference.files.len() >= 10, "too few reference files: {}", reference.files.len());
    let mut worst = (0.0f32, String::new());
    for (file, expected) in &reference.files {
        let samples = read_wav(&common::fixtures().join(file)).unwrap();
        let mut oww = OpenWakeWord::new(&models.oww, &models.wakes).unwrap();
        // Odd chunk sizes: buffering and batching must not change the result.
        let mut frames = Vec::new();
        for chunk in samples.chunks(3001) {
            frames.extend(oww.score_frames(chunk).unwrap());
        }
        for (m, spec) in models.wakes.iter().enumerate() {
            let want = &expected[&spec.name];
            assert_eq!(frames.len(), want.len(), "{file} {}: frame count", spec.name);
            for (i, (f, w)) in frames.iter().zip(want).enumerate() {
                let d = (f.scores[m] - w).abs();
                assert!(d <= 0.02, "{file} {} frame {i}: sotto {} vs reference {w}", spec.name, f.scores[m]);
                if d > worst.0 {
                    worst = (d, format!("{file} {} frame {i}", spec.name));
                }
            }
        }
    }
    eprintln!("largest difference {:.6} at {}", worst.0, worst.1);
}
