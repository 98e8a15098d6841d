# sample stage: rules added by the sample work.
