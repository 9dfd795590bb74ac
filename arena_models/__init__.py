"""Everything that talks to models: roster, backends, judge prompts, verdict parsing, caches."""
