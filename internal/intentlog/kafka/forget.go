package kafka

// Forgetting topics. Kafka clients cache a topic's id and partition count;
// a topic deleted and created again (a dropped table created anew) has a
// new id, and a client that holds the old one fails on it
// (UNKNOWN_TOPIC_ID, or a partition beyond the old count) until the topic
// is purged from it. DeleteTopic forgets the topics it deletes; a process
// that learns that another deleted them calls Forget.

// Forget drops what the Log and its group members know of topics (wail's
// names): partition counts, topic ids, max.message.bytes and the clients'
// metadata. A
// member's group stops consuming them until AddTopics adds them again.
func (l *Log) Forget(topics ...string) {
	ext := l.names.externalAll(topics)
	l.mu.Lock()
	for _, t := range ext {
		delete(l.parts, t)
		l.purges[t]++ // Appends in flight fail, and are tried again
	}
	members := make([]*Member, 0, len(l.members))
	for m := range l.members {
		members = append(members, m)
	}
	l.mu.Unlock()
	l.cl.PurgeTopicsFromClient(ext...)
	l.produceMu.Lock()
	prod := l.prod.Load()
	l.produceMu.Unlock()
	if prod.cl != l.cl {
		prod.cl.PurgeTopicsFromProducing(ext...)
	}
	l.forgetHanded(prod, ext...)
	l.forgetLimits(ext...) // a topic of the name created again may have another
	l.purged(ext...)
	for _, m := range members {
		m.forget(ext)
	}
}

// forget purges external topic names from the member's clients.
func (m *Member) forget(ext []string) {
	m.cl.PurgeTopicsFromClient(ext...)
	for _, p := range m.producers {
		bc := p.bc.Load()
		bc.cl.PurgeTopicsFromClient(ext...)
		m.l.forgetHanded(bc, ext...)
	}
	m.metaMu.Lock()
	for _, t := range ext {
		delete(m.topicIDs, t)
	}
	m.metaMu.Unlock()
}
