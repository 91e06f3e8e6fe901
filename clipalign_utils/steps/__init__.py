"""Analysis steps: each module computes one step's tables from a run and its parameters, so a
notebook only tells the story around one call."""
