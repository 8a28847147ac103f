"""The capacity study: how far each recurrent model counts under truncated
BPTT. Run from the repository's root: python -m study.sweep, study.counter."""

ARCHS = ('rnn', 'rnn_relu', 'lstm', 'lstm1', 'gru')
# The tutorial's lstm with one of its choices undone, for the study alone.
VARIANTS = {
    'lstm_nodropout': ('lstm', {'dropout': 0}),
    'lstm_onelayer': ('lstm', {'n_layers': 1}),
    'lstm_chainerinit': ('lstm', {'uniform_init': False}),
}
