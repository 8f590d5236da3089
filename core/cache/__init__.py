"""The cache's ground rules, shared by every writer: atomic publishing, locks, checksums, quarantine.

- `atomic`: every write goes to a unique temporary name in the same folder and is renamed into place;
- `locks`: an entry that many processes may create at once is made under a file lock, so a second
  process waits for the first one's work and reuses it;
- `checksums`: a finished entry is sealed with the size and sha256 of each of its files (written last),
  and checked once per process when it is read;
- `quarantine`: an entry that fails its check is moved aside, with one line saying which and why, and
  recomputed;
- `inventory`: the whole cache, entry by entry, for `probebank cache verify` and `probebank cache gc`.
"""
