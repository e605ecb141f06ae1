package policyload

import (
	"context"
	"fmt"

	"bulwark/internal/config"
	"bulwark/internal/xfr"
)

// newSecondaries makes a zone secondary for each transferred list. Each
// new copy of a zone is loaded at once.
func (m *Manager) newSecondaries() error {
	var all []*xfr.Secondary
	for _, l := range m.cfg.Policy.Lists {
		if !l.Transferred() {
			continue
		}
		key, err := transferKey(l)
		if err != nil {
			return err
		}
		s := xfr.NewSecondary(xfr.Config{
			List: l.Name, Zone: l.Zone, Primaries: l.PrimaryAddrs, AllowNotify: l.NotifyPrefixes,
			Key: key, File: l.File, Loaded: func() { m.Reload(false) },
		}, m.log)
		m.secondaries[l.Name] = s
		all = append(all, s)
	}
	if len(all) > 0 {
		m.notify = xfr.NewNotifyHandler(all, m.log, nil)
	}
	return nil
}

// transferKey returns the TSIG key of list l, or nil when it has none.
func transferKey(l config.PolicyList) (*xfr.Key, error) {
	if l.TSIG.Name == "" {
		return nil, nil
	}
	key, err := xfr.NewKey(l.TSIG.Name, l.TSIG.Algorithm, l.TSIG.Secret)
	if err != nil {
		return nil, fmt.Errorf("policy list %s: %w", l.Name, err)
	}
	return key, nil
}

// Transfer runs the refreshes of every transferred list until ctx ends:
// one now, then on the timers of each zone's SOA record and on NOTIFY.
func (m *Manager) Transfer(ctx context.Context) {
	for _, s := range m.secondaries {
		go s.Run(ctx)
	}
}

// NotifyHandler returns the handler of NOTIFY messages for the zones of
// the transferred lists, or nil when there is none.
func (m *Manager) NotifyHandler() *xfr.NotifyHandler { return m.notify }

// NotifyStats returns the NOTIFY counters; ok is false when no list is
// transferred.
func (m *Manager) NotifyStats() (stats xfr.NotifyStats, ok bool) {
	if m.notify == nil {
		return xfr.NotifyStats{}, false
	}
	return m.notify.Stats(), true
}

// withTransfer adds the zone transfer state to st, for a transferred
// list. A transfer failure becomes the list's error when its file loaded
// well.
func (m *Manager) withTransfer(st ListState) ListState {
	s := m.secondaries[st.Name]
	if s == nil {
		return st
	}
	ts := s.State()
	st.Transfer = &ts
	if st.Error == "" {
		st.Error = ts.Error
	}
	return st
}
