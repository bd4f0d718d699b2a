#!/usr/bin/perl
# Long-lived bridge between engine/engagement/sisimai_bridge.py and Sisimai (Debian
# package libsisimai-perl). Protocol, one request at a time on stdin/stdout:
#   request:  "<byte length>\n" followed by exactly that many bytes of one email
#   answer:   one line of JSON: {"ok":1,"results":[...Sisimai::Data->damn...]}
#             or {"ok":0,"error":"..."}
# Loading Sisimai costs far more than parsing one message, hence one process for many.
use strict;
use warnings;
use JSON::PP;
use Sisimai;

binmode STDIN;
binmode STDOUT;
$| = 1;
my $json = JSON::PP->new->canonical(1)->utf8(0);  # Sisimai hands back bytes: pass them through
print $json->encode({ ready => 1, version => Sisimai->version }), "\n";

while (defined(my $line = <STDIN>)) {
    chomp $line;
    next if $line eq '';
    my $size = $line =~ /\A(\d+)\z/ ? $1 : -1;
    if ($size < 0) { print $json->encode({ ok => 0, error => 'bad length' }), "\n"; next }
    my $data = '';
    while (length($data) < $size) {
        my $got = read(STDIN, $data, $size - length($data), length($data));
        last unless $got;
    }
    my $results = [];
    my $ok = eval {
        my $parsed = Sisimai->make(\$data, delivered => 1) || [];
        for my $item (@$parsed) {
            my $row = $item->damn;
            push @$results, $row if $row;
        }
        1;
    };
    if ($ok) { print $json->encode({ ok => 1, results => $results }), "\n" }
    else { my $err = "$@"; $err =~ s/\s+/ /g; print $json->encode({ ok => 0, error => substr($err, 0, 300) }), "\n" }
}
