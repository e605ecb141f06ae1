package config

import "time"

// Log sets the structured log.
type Log struct {
	// Level is debug, info, warn or error. Default: info.
	Level string `yaml:"level"`
	// Format is text or json. Default: text.
	Format string `yaml:"format"`
	// RepeatLimit is the number of times the same message at the same
	// level is written per RepeatInterval. Past it, the repeats are counted,
	// and one line with the count follows at the end of the interval. 0
	// turns the limit off. Default: 10.
	RepeatLimit int `yaml:"repeat_limit"`
	// RepeatInterval is the period of RepeatLimit. Unit: duration, 1s to
	// 1h. Default: 1m.
	RepeatInterval Duration `yaml:"repeat_interval"`
}

// Defaults of the log section.
const (
	defaultLogRepeatLimit    = 10
	defaultLogRepeatInterval = time.Minute
)

func defaultLog() Log {
	return Log{
		Level:          "info",
		Format:         "text",
		RepeatLimit:    defaultLogRepeatLimit,
		RepeatInterval: Duration(defaultLogRepeatInterval),
	}
}

func (v *validator) log() error {
	l := &v.cfg.Log
	switch l.Level {
	case "debug", "info", "warn", "error":
	default:
		return v.errorf("log.level", "unknown level %q: use debug, info, warn or error", l.Level)
	}
	switch l.Format {
	case "text", "json":
	default:
		return v.errorf("log.format", "unknown format %q: use text or json", l.Format)
	}
	if l.RepeatLimit < 0 || l.RepeatLimit > 1_000_000 {
		return v.errorf("log.repeat_limit", "invalid value %d: use 0 (no limit) to 1000000", l.RepeatLimit)
	}
	if l.RepeatInterval < Duration(time.Second) || l.RepeatInterval > Duration(time.Hour) {
		return v.errorf("log.repeat_interval", "invalid duration %s: use 1s to 1h", l.RepeatInterval.D())
	}
	return nil
}
