package policyload

import (
	"bulwark/internal/config"
	"bulwark/internal/proceed"
)

// ProceedRules returns the proceed anyway setting of every flavour of cfg
// that turns it on, by flavour name. A tenant's flavour takes the setting
// of the flavour it builds on and never skips the tenant's deny lists,
// unless the tenant sets proceed_anyway itself.
func ProceedRules(cfg *config.Config) map[string]proceed.Rule {
	rules := map[string]proceed.Rule{}
	for _, f := range cfg.Policy.Flavours {
		if f.ProceedAnyway > 0 {
			rules[f.Name] = proceed.Rule{Duration: f.ProceedAnyway.D()}
		}
	}
	for _, tn := range cfg.Policy.Tenants {
		var r proceed.Rule
		if tn.ProceedAnyway != nil {
			r.Duration = tn.ProceedAnyway.D()
		} else {
			r = proceed.Rule{Duration: rules[tn.Flavour].Duration, Enforced: tn.Deny}
		}
		if r.On() {
			rules[TenantFlavour(tn.Name)] = r
		}
	}
	return rules
}
