"""Files of a case: type sniffed from the bytes, limits from settings, a private original and a stripped copy."""
