package server

// Routes returns the patterns of the serving handler and of the starting
// one, for the external tests (each must have a permission).
func Routes(s *Server) []string {
	s.startingHandler()
	starting := s.routes
	s.Handler()
	return append(starting, s.routes...)
}

// SetServingHook makes Serve call f once it answers, before its start
// opens anything.
func SetServingHook(s *Server, f func()) { s.testHookServing = f }

// SetShutdownHook makes the shutdown call f once it began, before it stops
// serving.
func SetShutdownHook(s *Server, f func()) { s.testHookShutdown = f }
