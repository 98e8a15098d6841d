# segment stage: rules added by the segment work.
