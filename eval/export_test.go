package eval

// BrokenTrainBeforeScore returns the test-time training mode of opts made
// illegal on purpose: every chunk is trained on before it is scored (the
// audit's tests show it is caught).
func (e *Evaluator) BrokenTrainBeforeScore(tokens []uint16, opts Options) (Mode, error) {
	m, err := e.Mode(tokens, opts, nil)
	if err != nil {
		return nil, err
	}
	m.(*tttMode).trainBeforeScore = true
	return m, nil
}
