package server

// Routes returns the patterns of the serving handler and of the starting
// one, for the external tests (each must have a permission).
func Routes(s *Server) []string {
	s.startingHandler()
	starting := s.routes
	s.Handler()
	return append(starting, s.routes...)
}
