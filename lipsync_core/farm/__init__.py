"""Dubbing on a render farm: a shot list written as a job for an engine studios already run (Open Job
Description, OpenCue), and the step that joins a movie's chunks. No scheduler of our own."""
