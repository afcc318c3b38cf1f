"""Speaker diarization for the transcribe job: CAM++ speaker embeddings on onnxruntime, over
the speech VAD finds, clustered over the whole file (see ``diarize.py``)."""
