"""The learning stage: sample sets, the five models, their training and their comparison."""
