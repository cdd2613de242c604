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
// member's group stops consuming them until AddTopics adds them again;
// its offsets of them are refused (ErrTopicReplaced) until their
// partitions are assigned again, which reads their ids anew.
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
	if len(ext) == 0 {
		return
	}
	// A topic may be there again, created anew and written to (see
	// leaveTopics): Appends move to a new producer client, and the
	// clients purged of the topics produce no more. l.cl, which serves
	// the Log's other requests, was replaced as producer by the first
	// move; were it still the producer (no client could be made), its
	// metadata of the topics stays, and an Append refused for an unknown
	// topic moves again.
	if l.leaveTopics(ext...) {
		l.cl.PurgeTopicsFromClient(ext...)
	}
	l.forgetLimits(ext...) // a topic of the name created again may have another
	l.purged(ext...)
	for _, m := range members {
		m.forget(ext)
	}
}

// forget purges external topic names from the member's group client, and
// has its transactional producers replaced at their next transaction: a
// producer purged in place of a topic still there (created again and
// written to) would start its partitions' sequence numbers over, which
// on a cluster of transaction version 1 (one producer epoch for many
// transactions) the broker takes for duplicates of batches it holds,
// acknowledged and never written. A new client has none of the topics'
// metadata either.
func (m *Member) forget(ext []string) {
	m.cl.PurgeTopicsFromClient(ext...)
	for _, p := range m.producers {
		p.renewNext.Store(true)
	}
	m.metaMu.Lock()
	for _, t := range ext {
		delete(m.topicIDs, t)
		m.forgotten[t] = true // (topicID)
	}
	m.metaMu.Unlock()
}
