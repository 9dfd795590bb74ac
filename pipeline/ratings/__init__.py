"""Ratings: battle files -> pair counts -> Bradley-Terry (+ bootstrap, style control) -> leaderboard."""
