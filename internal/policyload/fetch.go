package policyload

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"time"

	"bulwark/internal/atomicfile"
	"bulwark/internal/config"
	"bulwark/internal/feed"
)

// maxDownloadBytes bounds one list download.
const maxDownloadBytes = 1 << 30

// Retry delays after a failed download: the first, doubled after each
// failure up to the list's refresh interval.
const firstRetry = 30 * time.Second

// fetcher downloads one list to its file. The validators of the last
// download (ETag, Last-Modified) are kept beside the file, so that a
// restart still sends conditional requests.
type fetcher struct {
	list   config.PolicyList
	client *http.Client
	log    *slog.Logger
	// firstRetry is the first retry delay; zero means the constant.
	firstRetry time.Duration
}

// validators are the HTTP validators of the last good download.
type validators struct {
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"last_modified,omitempty"`
}

func (f *fetcher) metaPath() string { return f.list.File + ".http.json" }

func (f *fetcher) loadValidators() validators {
	var v validators
	if data, err := os.ReadFile(f.metaPath()); err == nil {
		json.Unmarshal(data, &v)
	}
	return v
}

// fetch downloads the list once. changed is true when a new copy replaced
// the file. A download that is not a usable list of the configured format
// is an error, and the last good copy stays.
func (f *fetcher) fetch(ctx context.Context) (changed bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.list.URL, nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("User-Agent", "bulwark")
	v := f.loadValidators()
	if _, statErr := os.Stat(f.list.File); statErr == nil {
		// Conditional only when the copy they describe exists.
		if v.ETag != "" {
			req.Header.Set("If-None-Match", v.ETag)
		}
		if v.LastModified != "" {
			req.Header.Set("If-Modified-Since", v.LastModified)
		}
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNotModified:
		return false, nil
	case http.StatusOK:
	default:
		return false, fmt.Errorf("GET %s: %s", f.list.URL, resp.Status)
	}

	tmp, err := atomicfile.Create(f.list.File, 0o644)
	if err != nil {
		return false, err
	}
	defer tmp.Abort() // a no-op once committed
	n, err := io.Copy(tmp, io.LimitReader(resp.Body, maxDownloadBytes+1))
	if err == nil && n > maxDownloadBytes {
		err = fmt.Errorf("GET %s: larger than %d bytes", f.list.URL, maxDownloadBytes)
	}
	if err != nil {
		return false, err
	}
	if err := checkDownload(tmp.Name(), f.list.Format); err != nil {
		return false, fmt.Errorf("GET %s: %w; keeping the last good copy", f.list.URL, err)
	}
	if err := tmp.Commit(); err != nil {
		return false, err
	}
	v = validators{ETag: resp.Header.Get("ETag"), LastModified: resp.Header.Get("Last-Modified")}
	if data, err := json.Marshal(v); err == nil {
		atomicfile.WriteFile(f.metaPath(), data, 0o644)
	}
	return true, nil
}

// checkDownload parses a downloaded list and rejects one that is empty or
// mostly malformed, such as an HTML error page served with status 200.
func checkDownload(path, format string) error {
	fm, err := feed.ParseFormat(format)
	if err != nil {
		return err
	}
	file, err := os.Open(path)
	if err != nil {
		return err
	}
	defer file.Close()
	rules := 0
	res, err := feed.Scan(file, fm, feed.Options{}, func(*feed.Rule) { rules++ })
	if err != nil {
		return err
	}
	entries := rules + res.BadCount
	switch {
	case rules == 0:
		return errors.New("the download contains no rule")
	case res.BadCount*2 > entries:
		return fmt.Errorf("%d of %d lines are malformed", res.BadCount, entries)
	}
	return nil
}

// cleanTemp removes the unfinished downloads that an earlier run, killed
// while it wrote them, left beside the list file and its validators.
func (f *fetcher) cleanTemp() {
	for _, path := range []string{f.list.File, f.metaPath()} {
		removed, err := atomicfile.CleanTemp(path)
		if err != nil {
			f.log.Warn("cannot remove unfinished downloads of an earlier run", "list", f.list.Name, "error", err)
		}
		if len(removed) > 0 {
			f.log.Info("removed unfinished downloads of an earlier run", "list", f.list.Name, "count", len(removed))
		}
	}
}

// run downloads the list now, then every refresh interval, retrying
// failures with a doubling delay, and calls loaded after each new copy.
func (f *fetcher) run(ctx context.Context, loaded func()) {
	f.cleanTemp()
	refresh := f.list.Refresh.D()
	first := f.firstRetry
	if first == 0 {
		first = firstRetry
	}
	retry := first
	for {
		fetchCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		changed, err := f.fetch(fetchCtx)
		cancel()
		wait := refresh
		switch {
		case err != nil:
			f.log.Warn("list download failed; serving the last good copy", "list", f.list.Name, "url", f.list.URL, "retry_seconds", retry.Seconds(), "error", err)
			wait = retry
			retry = min(retry*2, refresh)
		case changed:
			f.log.Info("list downloaded", "list", f.list.Name, "url", f.list.URL)
			retry = first
			loaded()
		default:
			retry = first
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}
