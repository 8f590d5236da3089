"""Result records on disk and what is made of them: summaries, leaderboards, submission checks, the replication of the paper's findings and neuron cards."""
