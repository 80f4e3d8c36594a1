"""The synthetic-to-real benchmark (Real2Real / Syn2Real / Mix2Real / classical arms) and its HTML report."""
