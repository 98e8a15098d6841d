# metrics stage: rules added by the metrics work.
