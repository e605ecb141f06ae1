module bulwark

go 1.26.8

require (
	github.com/goccy/go-yaml v1.19.2
	github.com/miekg/dns v1.1.73
	github.com/quic-go/quic-go v0.65.0
	golang.org/x/net v0.63.0
	golang.org/x/sys v0.50.0
)

require (
	github.com/quic-go/qpack v0.6.0 // indirect
	golang.org/x/text v0.44.0 // indirect
)

require (
	github.com/cloudflare/circl v1.6.5
	golang.org/x/crypto v0.59.0 // indirect
)
