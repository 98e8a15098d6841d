# train stage: rules added by the train work.
