"""WizardArena eval sets: embeddings, K-means, Diverse / Hard / Mix selection, difficulty, report, decontamination."""
