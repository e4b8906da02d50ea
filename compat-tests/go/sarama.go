package main

// IBM/sarama: the sync producer (idempotent), the partition consumer, consumer groups,
// transactions and the cluster admin, at sarama's default protocol version (what most
// applications run with) unless a scenario says otherwise.

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/IBM/sarama"
)

func saramaScenarios() []scenario {
	return []scenario{
		{"sarama_produce_consume", true, 120 * time.Second, saramaProduceConsume},
		{"sarama_group", false, 180 * time.Second, saramaGroup},
		{"sarama_transactions", false, 120 * time.Second, saramaTransactions},
		{"sarama_admin", false, 120 * time.Second, saramaAdmin},
	}
}

func saramaConfig() *sarama.Config {
	c := sarama.NewConfig()
	c.ClientID = "gregor-compat"
	c.Producer.Return.Successes = true
	c.Producer.RequiredAcks = sarama.WaitForAll
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	c.Metadata.RefreshFrequency = time.Second
	return c
}

func saramaAdminClient(e *env) (sarama.ClusterAdmin, error) {
	return sarama.NewClusterAdmin(e.brokers(), saramaConfig())
}

func saramaCreate(e *env, topic string, partitions int32, configs map[string]*string) error {
	adm, err := saramaAdminClient(e)
	if err != nil {
		return err
	}
	defer adm.Close()
	return adm.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: 1, ConfigEntries: configs}, false)
}

// saramaReadAll reads every partition of topic from the oldest offset until `expected`
// records came (then a short wait for extras), with the given isolation level.
func saramaReadAll(ctx context.Context, e *env, topic string, partitions int32, expected int, isolation sarama.IsolationLevel) ([]*sarama.ConsumerMessage, error) {
	c := saramaConfig()
	c.Consumer.IsolationLevel = isolation
	consumer, err := sarama.NewConsumer(e.brokers(), c)
	if err != nil {
		return nil, err
	}
	defer consumer.Close()
	out := make(chan *sarama.ConsumerMessage, 1024)
	var pcs []sarama.PartitionConsumer
	for p := int32(0); p < partitions; p++ {
		pc, err := consumer.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			return nil, err
		}
		pcs = append(pcs, pc)
		go func() {
			for m := range pc.Messages() {
				out <- m
			}
		}()
	}
	defer func() {
		for _, pc := range pcs {
			pc.AsyncClose()
		}
	}()
	var got []*sarama.ConsumerMessage
	deadline := time.After(30 * time.Second)
	for {
		wait := 30 * time.Second
		if len(got) >= expected {
			wait = 500 * time.Millisecond
		}
		select {
		case m := <-out:
			got = append(got, m)
		case <-time.After(wait):
			return got, nil
		case <-deadline:
			return got, nil
		case <-ctx.Done():
			return got, ctx.Err()
		}
	}
}

// saramaProduceConsume: an idempotent sync producer sends 2,000 keyed records with headers
// to 3 partitions; offsets come back dense per partition and a partition consumer reads
// everything back as sent.
func saramaProduceConsume(ctx context.Context, e *env) error {
	topic := e.name("t")
	if err := saramaCreate(e, topic, 3, nil); err != nil {
		return err
	}
	c := saramaConfig()
	c.Producer.Idempotent = true
	c.Net.MaxOpenRequests = 1
	p, err := sarama.NewSyncProducer(e.brokers(), c)
	if err != nil {
		return err
	}
	defer p.Close()
	const n = 2000
	next := map[int32]int64{}
	for i := 0; i < n; i++ {
		part, off, err := p.SendMessage(&sarama.ProducerMessage{
			Topic:   topic,
			Key:     sarama.StringEncoder("key-" + strconv.Itoa(i%37)),
			Value:   sarama.StringEncoder("value-" + strconv.Itoa(i)),
			Headers: []sarama.RecordHeader{{Key: []byte("seq"), Value: []byte(strconv.Itoa(i))}},
		})
		if err != nil {
			return fmt.Errorf("send %d: %w", i, err)
		}
		if off != next[part] {
			return fmt.Errorf("record %d at offset %d of partition %d, want %d", i, off, part, next[part])
		}
		next[part]++
	}
	got, err := saramaReadAll(ctx, e, topic, 3, n, sarama.ReadUncommitted)
	if err != nil {
		return err
	}
	if len(got) != n {
		return fmt.Errorf("read %d of %d records", len(got), n)
	}
	seen := make([]bool, n)
	for _, m := range got {
		if len(m.Headers) != 1 || string(m.Headers[0].Key) != "seq" {
			return fmt.Errorf("headers lost: %v", m.Headers)
		}
		i, _ := strconv.Atoi(string(m.Headers[0].Value))
		if seen[i] {
			return fmt.Errorf("record %d read twice", i)
		}
		seen[i] = true
		if string(m.Value) != "value-"+strconv.Itoa(i) || string(m.Key) != "key-"+strconv.Itoa(i%37) {
			return fmt.Errorf("record %d came back as %q=%q", i, m.Key, m.Value)
		}
	}
	return nil
}

// groupHandler counts what a member processed and the partitions it holds.
type groupHandler struct {
	mu        *sync.Mutex
	processed map[string]int
	owned     map[int32]bool
}

func (h *groupHandler) Setup(s sarama.ConsumerGroupSession) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.owned = map[int32]bool{}
	for _, ps := range s.Claims() {
		for _, p := range ps {
			h.owned[p] = true
		}
	}
	return nil
}

func (h *groupHandler) Cleanup(s sarama.ConsumerGroupSession) error {
	// Commit what was marked before the partitions go.
	s.Commit()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.owned = map[int32]bool{}
	return nil
}

func (h *groupHandler) ConsumeClaim(s sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for m := range claim.Messages() {
		h.mu.Lock()
		h.processed[fmt.Sprintf("%d@%d", m.Partition, m.Offset)]++
		h.mu.Unlock()
		s.MarkMessage(m, "")
		s.Commit()
	}
	return nil
}

func (h *groupHandler) ownedCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.owned)
}

// saramaGroup: two members of a consumer group (sarama's default range strategy, eager)
// share six partitions; every record is processed once and the committed offsets are the
// partitions' ends.
func saramaGroup(ctx context.Context, e *env) error {
	topic, group := e.name("t"), e.name("g")
	const partitions, per = 6, 50
	if err := saramaCreate(e, topic, partitions, nil); err != nil {
		return err
	}
	c := saramaConfig()
	c.Producer.Partitioner = sarama.NewManualPartitioner
	p, err := sarama.NewSyncProducer(e.brokers(), c)
	if err != nil {
		return err
	}
	for part := int32(0); part < partitions; part++ {
		for i := 0; i < per; i++ {
			if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: topic, Partition: part, Value: sarama.StringEncoder(strconv.Itoa(i))}); err != nil {
				p.Close()
				return err
			}
		}
	}
	p.Close()
	var mu sync.Mutex
	processed := map[string]int{}
	gctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	start := func() (*groupHandler, sarama.ConsumerGroup, error) {
		gc := saramaConfig()
		gc.Consumer.Offsets.AutoCommit.Enable = false
		cg, err := sarama.NewConsumerGroup(e.brokers(), group, gc)
		if err != nil {
			return nil, nil, err
		}
		h := &groupHandler{mu: &mu, processed: processed, owned: map[int32]bool{}}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for gctx.Err() == nil {
				if err := cg.Consume(gctx, []string{topic}, h); err != nil && !errors.Is(err, sarama.ErrClosedConsumerGroup) {
					time.Sleep(100 * time.Millisecond)
				}
			}
		}()
		return h, cg, nil
	}
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(processed)
	}
	a, cga, err := start()
	if err != nil {
		return err
	}
	defer cga.Close()
	deadline := time.Now().Add(60 * time.Second)
	for count() < partitions*per/3 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	b, cgb, err := start()
	if err != nil {
		return err
	}
	defer cgb.Close()
	deadline = time.Now().Add(90 * time.Second)
	for (count() < partitions*per || a.ownedCount() != partitions/2 || b.ownedCount() != partitions/2) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	mu.Lock()
	var bad error
	for k, n := range processed {
		if n != 1 && bad == nil {
			bad = fmt.Errorf("record %s processed %d times", k, n)
		}
	}
	total := len(processed)
	mu.Unlock()
	if err := first(bad, check(total == partitions*per, "processed %d of %d", total, partitions*per),
		check(a.ownedCount() == partitions/2 && b.ownedCount() == partitions/2, "shares %d and %d", a.ownedCount(), b.ownedCount())); err != nil {
		return err
	}
	cancel()
	cga.Close()
	cgb.Close()
	wg.Wait()
	adm, err := saramaAdminClient(e)
	if err != nil {
		return err
	}
	defer adm.Close()
	all := make([]int32, partitions)
	for i := range all {
		all[i] = int32(i)
	}
	offsets, err := adm.ListConsumerGroupOffsets(group, map[string][]int32{topic: all})
	if err != nil {
		return err
	}
	for _, part := range all {
		blk := offsets.GetBlock(topic, part)
		if blk == nil || blk.Offset != per {
			return fmt.Errorf("committed offset of partition %d: %+v", part, blk)
		}
	}
	return nil
}

// saramaTransactions: a transactional producer commits, aborts and commits; read_committed
// sees only the committed records.
func saramaTransactions(ctx context.Context, e *env) error {
	topic := e.name("t")
	if err := saramaCreate(e, topic, 1, nil); err != nil {
		return err
	}
	c := saramaConfig()
	c.Producer.Idempotent = true
	c.Producer.Transaction.ID = e.name("txn")
	c.Net.MaxOpenRequests = 1
	p, err := sarama.NewSyncProducer(e.brokers(), c)
	if err != nil {
		return err
	}
	defer p.Close()
	for round, commit := range []bool{true, false, true} {
		if err := p.BeginTxn(); err != nil {
			return err
		}
		for i := 0; i < 5; i++ {
			if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: topic, Value: sarama.StringEncoder(fmt.Sprintf("round%d-%d", round, i))}); err != nil {
				return err
			}
		}
		if commit {
			err = p.CommitTxn()
		} else {
			err = p.AbortTxn()
		}
		if err != nil {
			return fmt.Errorf("end of round %d: %w", round, err)
		}
	}
	committed, err := saramaReadAll(ctx, e, topic, 1, 10, sarama.ReadCommitted)
	if err != nil {
		return err
	}
	if len(committed) != 10 {
		return fmt.Errorf("read_committed read %d records, want 10", len(committed))
	}
	for _, m := range committed {
		if string(m.Value[:6]) == "round1" {
			return fmt.Errorf("aborted record %q read_committed", m.Value)
		}
	}
	all, err := saramaReadAll(ctx, e, topic, 1, 15, sarama.ReadUncommitted)
	if err != nil {
		return err
	}
	return check(len(all) == 15, "read_uncommitted read %d records, want 15", len(all))
}

// saramaAdmin: the cluster admin's topics, partitions, configs, records, groups, log dirs.
func saramaAdmin(_ context.Context, e *env) error {
	adm, err := saramaAdminClient(e)
	if err != nil {
		return err
	}
	defer adm.Close()
	topic := e.name("t")
	ret := "7200000"
	if err := adm.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 2, ReplicationFactor: 1, ConfigEntries: map[string]*string{"retention.ms": &ret}}, false); err != nil {
		return err
	}
	if err := adm.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 2, ReplicationFactor: 1}, false); !errors.Is(err, sarama.ErrTopicAlreadyExists) {
		return fmt.Errorf("creating twice: %v", err)
	}
	if err := adm.CreateTopic(e.name("rf3"), &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 3}, false); !errors.Is(err, sarama.ErrInvalidReplicationFactor) {
		return fmt.Errorf("replication factor 3: %v", err)
	}
	topics, err := adm.ListTopics()
	if err != nil {
		return err
	}
	if d, ok := topics[topic]; !ok || d.NumPartitions != 2 || d.ConfigEntries["retention.ms"] == nil || *d.ConfigEntries["retention.ms"] != ret {
		return fmt.Errorf("listed topic: %+v", topics[topic])
	}
	md, err := adm.DescribeTopics([]string{topic})
	if err != nil {
		return err
	}
	if len(md) != 1 || len(md[0].Partitions) != 2 || !errors.Is(md[0].Err, sarama.ErrNoError) {
		return fmt.Errorf("described topic: %+v", md)
	}
	mmb := "200000"
	if err := adm.IncrementalAlterConfig(sarama.TopicResource, topic, map[string]sarama.IncrementalAlterConfigsEntry{
		"max.message.bytes": {Operation: sarama.IncrementalAlterConfigsOperationSet, Value: &mmb},
	}, false); err != nil {
		return err
	}
	entries, err := adm.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic})
	if err != nil {
		return err
	}
	found := false
	for _, c := range entries {
		if c.Name == "max.message.bytes" {
			found = c.Value == mmb && c.Source == sarama.SourceTopic
		}
	}
	if !found {
		return fmt.Errorf("max.message.bytes not described as the topic's 200000")
	}
	if err := adm.CreatePartitions(topic, 3, nil, false); err != nil {
		return err
	}
	c := saramaConfig()
	c.Producer.Partitioner = sarama.NewManualPartitioner
	p, err := sarama.NewSyncProducer(e.brokers(), c)
	if err != nil {
		return err
	}
	for i := 0; i < 20; i++ {
		if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: topic, Partition: 2, Value: sarama.StringEncoder("v")}); err != nil {
			p.Close()
			return err
		}
	}
	p.Close()
	if err := adm.DeleteRecords(topic, map[int32]int64{2: 5}); err != nil {
		return err
	}
	client, err := sarama.NewClient(e.brokers(), saramaConfig())
	if err != nil {
		return err
	}
	defer client.Close()
	oldest, err := client.GetOffset(topic, 2, sarama.OffsetOldest)
	if err != nil {
		return err
	}
	newest, err := client.GetOffset(topic, 2, sarama.OffsetNewest)
	if err != nil {
		return err
	}
	if oldest != 5 || newest != 20 {
		return fmt.Errorf("offsets after DeleteRecords: %d..%d, want 5..20", oldest, newest)
	}
	// A group with a committed offset, through the offset manager.
	group := e.name("g")
	om, err := sarama.NewOffsetManagerFromClient(group, client)
	if err != nil {
		return err
	}
	pom, err := om.ManagePartition(topic, 2)
	if err != nil {
		return err
	}
	pom.MarkOffset(7, "seven")
	om.Commit()
	pom.Close()
	om.Close()
	groups, err := adm.ListConsumerGroups()
	if err != nil {
		return err
	}
	if _, ok := groups[group]; !ok {
		return fmt.Errorf("group %s not listed in %v", group, groups)
	}
	offsets, err := adm.ListConsumerGroupOffsets(group, map[string][]int32{topic: {2}})
	if err != nil {
		return err
	}
	if blk := offsets.GetBlock(topic, 2); blk == nil || blk.Offset != 7 || blk.Metadata != "seven" {
		return fmt.Errorf("committed offset: %+v", blk)
	}
	described, err := adm.DescribeConsumerGroups([]string{group})
	if err != nil {
		return err
	}
	if len(described) != 1 || described[0].State != "Empty" {
		return fmt.Errorf("described group: %+v", described)
	}
	if err := adm.DeleteConsumerGroup(group); err != nil {
		return err
	}
	brokers, controller, err := adm.DescribeCluster()
	if err != nil {
		return err
	}
	listed := false
	for _, b := range brokers {
		listed = listed || b.ID() == controller
	}
	if len(brokers) != expectedBrokers() || !listed {
		return fmt.Errorf("cluster: %d brokers, controller %d", len(brokers), controller)
	}
	dirs, err := adm.DescribeLogDirs([]int32{controller})
	if err != nil {
		return err
	}
	var size int64 = -1
	for _, d := range dirs[controller] {
		for _, t := range d.Topics {
			if t.Topic == topic {
				for _, pp := range t.Partitions {
					if pp.PartitionID == 2 {
						size = pp.Size
					}
				}
			}
		}
	}
	if size <= 0 {
		return fmt.Errorf("log dir size of partition 2: %d", size)
	}
	return adm.DeleteTopic(topic)
}
