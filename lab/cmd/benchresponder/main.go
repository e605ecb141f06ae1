// Command benchresponder is the ceiling of the benchmark setup: a UDP DNS
// responder that does the least work a server can. For each query it copies
// the header and question, sets the response flags and appends one prepared
// A record that points back at the question name. It keeps no cache and
// parses nothing beyond the question, so the queries per second it reaches
// show what the load generator and the kernel allow on the machine.
//
//	benchresponder -listen 127.0.0.1:5399
package main

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
)

// answerRecord is an A record for the question name (a compression pointer
// to offset 12) with TTL 300 and address 192.0.2.1.
var answerRecord = []byte{
	0xC0, 0x0C, // name: pointer to the question
	0x00, 0x01, 0x00, 0x01, // type A, class IN
	0x00, 0x00, 0x01, 0x2C, // TTL 300
	0x00, 0x04, 192, 0, 2, 1,
}

func main() {
	listen := flag.String("listen", "127.0.0.1:5399", "UDP address to answer on, as IP:port")
	flag.Parse()
	conn, err := net.ListenPacket("udp", *listen)
	if err != nil {
		fmt.Fprintf(os.Stderr, "benchresponder: %v\n", err)
		os.Exit(1)
	}
	serve(conn.(*net.UDPConn))
}

func serve(conn *net.UDPConn) {
	in := make([]byte, 4096)
	out := make([]byte, 0, 4096)
	for {
		n, addr, err := conn.ReadFromUDPAddrPort(in)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if resp, ok := respond(in[:n], out[:0]); ok {
			conn.WriteToUDPAddrPort(resp, addr)
		}
	}
}

// respond appends to out the response to query: its header and question
// with one answer, and no EDNS. ok is false for a packet that is not a
// query with one question.
func respond(query, out []byte) ([]byte, bool) {
	if len(query) < 12 || query[2]&0x80 != 0 || binary.BigEndian.Uint16(query[4:]) != 1 {
		return nil, false
	}
	end := 12
	for end < len(query) && query[end] != 0 {
		if query[end]&0xC0 != 0 {
			return nil, false // no compression in a question
		}
		end += int(query[end]) + 1
	}
	end += 5 // the root label, type and class
	if end > len(query) {
		return nil, false
	}
	out = append(out, query[:end]...)
	out[2] = 0x80 | query[2]&0x79           // QR, keep opcode and RD
	out[3] = 0x80                           // RA, NOERROR
	binary.BigEndian.PutUint16(out[6:], 1)  // ANCOUNT
	binary.BigEndian.PutUint16(out[8:], 0)  // NSCOUNT
	binary.BigEndian.PutUint16(out[10:], 0) // ARCOUNT
	return append(out, answerRecord...), true
}
