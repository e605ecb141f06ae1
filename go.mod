module bulwark

go 1.26.8

require (
	github.com/goccy/go-yaml v1.19.2 // indirect
	github.com/miekg/dns v1.1.73 // indirect
	golang.org/x/net v0.63.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
)
