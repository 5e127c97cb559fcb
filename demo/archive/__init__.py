"""Whole archives of photos and videos: work units, a manifest that makes a job resumable, and the Ray engine."""
