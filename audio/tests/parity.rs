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
    let mut oww = OpenWakeWord::new(&models.oww, &models.wakes).unwrap();
    // One frame at a time (live), odd sizes (buffering), 1 s blocks (runs of frames), each with
    // the whole-run embedding and with one embedding call per window.
    let runs = [(1280usize, true), (3001, true), (16_000, true), (16_000, false)];
    for ((file, expected), (chunk_len, whole_run)) in reference.files.iter().flat_map(|f| runs.map(|r| (f, r))) {
        let samples = read_wav(&common::fixtures().join(file)).unwrap();
        sotto_audio::WakeDetector::reset(&mut oww).unwrap();
        oww.set_whole_run_embedding(whole_run);
        let mut frames = Vec::new();
        for chunk in samples.chunks(chunk_len) {
            frames.extend(oww.score_frames(chunk).unwrap());
        }
        let file = format!("{file} (chunks of {chunk_len}, whole-run embedding {whole_run})");
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
