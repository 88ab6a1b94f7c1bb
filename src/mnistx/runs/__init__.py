"""A run folder's whole life: named (resolvers), checked before Hydra writes (preflight),
held by one writer (lock), recorded (records), continued (continuation), laid out (layout),
read back as data only (saved, sweep_record), and guarded against other commands' writes
(guard).

A finished run's results are never overwritten or nulled: resuming it changes no file;
extending it trains on and rewrites metrics.json for the whole run, and if the extension
fails, the finished record is kept in it.
"""
