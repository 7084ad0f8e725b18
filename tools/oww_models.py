"""Where the openWakeWord ONNX files are: Sotto's model store ($SOTTO_MODELS, file `<id>.onnx`)."""
import os
import sys

WAKE_NAMES = ["hey_jarvis", "alexa", "hey_mycroft", "hey_rhasspy"]


def model_files(models_dir):
    """Paths of the mel, embedding and wake models in the store, or exit naming what is missing."""
    models_dir = models_dir or os.environ.get("SOTTO_MODELS") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "sotto", "models"
    )
    ids = {"melspectrogram": "oww-melspectrogram", "embedding": "oww-embedding"}
    ids.update({w: f"wake-{w}" for w in WAKE_NAMES})
    files = {k: os.path.join(models_dir, f"{i}.onnx") for k, i in ids.items()}
    missing = [ids[k] for k, p in files.items() if not os.path.exists(p)]
    if missing:
        sys.exit(f"missing models {', '.join(missing)} in {models_dir}: run `sotto models fetch`")
    return files
