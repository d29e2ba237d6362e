package storage

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"activated/flow"
)

// retentionBatch bounds the events one transaction deletes, so a first
// sweep over years of log does not hold the write lock for long.
const retentionBatch = 5000

// DeleteEventsBefore deletes the audit events whose Time is before t, with
// their index entries, and returns how many it deleted. The log is read
// from its oldest event and the walk stops at the first event at or after
// t: events are appended in time order.
func (db *DB) DeleteEventsBefore(t time.Time) (int, error) {
	total := 0
	for {
		n := 0
		err := db.eng.update(func(btx kvTx) error {
			audit, idx := btx.Bucket(bucketAudit), btx.Bucket(bucketAuditIdx)
			var old, idxKeys [][]byte
			c := audit.Cursor()
			for k, v := c.First(); k != nil && len(old) < retentionBatch; k, v = c.Next() {
				var e flow.Event
				if err := json.Unmarshal(v, &e); err != nil {
					return fmt.Errorf("audit event %x: %w", k, err)
				}
				if !e.Time.Before(t) {
					break
				}
				old = append(old, bytes.Clone(k))
				idxKeys = append(idxKeys, idxKey(e.Login, k))
			}
			for i, k := range old {
				if err := idx.Delete(idxKeys[i]); err != nil {
					return err
				}
				if err := audit.Delete(k); err != nil {
					return err
				}
			}
			n = len(old)
			return nil
		})
		total += n
		if err != nil {
			return total, fmt.Errorf("delete audit events before %s: %w", t.Format(time.RFC3339), err)
		}
		if n < retentionBatch {
			return total, nil
		}
	}
}
