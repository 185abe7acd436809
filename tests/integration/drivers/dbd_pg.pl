# DBD::Pg (Debian's libdbd-pg-perl) compatibility checks; run by tests/integration/test_drivers.py.
# Usage: perl dbd_pg.pl URL TABLE_PREFIX all|common
# Prints one JSON line per check: {"name":..., "ok":..., "detail":...}. "detail" must not depend on the target
# (PostgreSQL or pool64) so the test can compare it with the direct run; "session_" checks run only with "all".
use strict;
use warnings;
use utf8;
use DBI qw(:sql_types);
use DBD::Pg qw(:pg_types);
use JSON::PP;
use POSIX qw(_exit);
use Time::HiRes qw(sleep time);

binmode STDOUT, ':encoding(UTF-8)';
$| = 1;

my ($url, $prefix, $scope) = @ARGV;
die "usage: dbd_pg.pl URL TABLE_PREFIX all|common\n" unless defined $scope;
# postgresql://user:password@host:port/db
my ($user, $password, $host, $port, $db) = $url =~ m{^postgres(?:ql)?://([^:]+):([^@]+)@([^:/]+):(\d+)/([^?]+)}
    or die "cannot parse $url\n";
my $dsn = "dbi:Pg:host=$host;port=$port;dbname=$db";
my $json = JSON::PP->new->canonical;

sub report {
    my ($name, $ok, $detail) = @_;
    print $json->encode({ name => $name, ok => ($ok ? JSON::PP::true : JSON::PP::false), detail => "$detail" }), "\n";
}

sub connect_db {
    return DBI->connect($dsn, $user, $password,
        { RaiseError => 1, PrintError => 0, PrintWarn => 0, AutoCommit => 1, pg_enable_utf8 => 1 });
}

my $main;
sub dbh { $main //= connect_db() }

sub check {
    my ($name, $code) = @_;
    my ($ok, $detail);
    if (eval { ($ok, $detail) = $code->(); 1 }) {
        report($name, $ok, $detail);
    } else {
        my $err = $@;
        $err =~ s/\s+$//;
        my $state = $main ? ($main->state // '') : '';
        report($name, 0, "exception $state: " . (split /\n/, $err)[0]);
        # The next check starts on a fresh connection, whatever state this one was left in.
        eval { $main->disconnect } if $main;
        $main = undef;
    }
}

# The SQLSTATE of the error the block raises on $h, or "none".
sub error_of {
    my ($h, $code) = @_;
    return 'none' if eval { $code->(); 1 };
    my $state = $h->state;
    return $state ne '' ? $state : "no-sqlstate: $@";
}

sub usable {
    my ($h) = @_;
    return ($h->selectrow_array('select 41 + ?', undef, 1) // '') eq '42';
}

sub t { return "${prefix}_$_[0]" }

# Runs $code in a child process (its own connections) and returns its (ok, detail), or reports its crash or a hang
# after $seconds. The main connection is closed first: a forked child must not share its socket.
sub isolated {
    my ($code, $seconds) = @_;
    if ($main) {
        local $SIG{__WARN__} = sub { };
        $main->disconnect;
        $main = undef;
    }
    pipe(my $reader, my $writer) or die "pipe: $!";
    my $pid = fork();
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        close $reader;
        my ($ok, $detail);
        eval { ($ok, $detail) = $code->(); 1 } or ($ok, $detail) = (0, "exception: " . (split /\n/, $@)[0]);
        print $writer $json->encode([$ok ? 1 : 0, "$detail"]);
        close $writer;
        _exit(0);
    }
    close $writer;
    my $out = '';
    my $timed_out = 0;
    eval {
        local $SIG{ALRM} = sub { die "timeout\n" };
        alarm $seconds;
        local $/;
        $out = <$reader> // '';
        alarm 0;
        1;
    } or do { $timed_out = 1; kill 'KILL', $pid };
    close $reader;
    waitpid($pid, 0);
    my $status = $?;
    return (0, "no answer within ${seconds}s") if $timed_out;
    return (0, 'the check\'s process ' . (($status & 127) ? 'killed by signal ' . ($status & 127) : 'exited')
        . ' without a result') if $out eq '';
    my $r = $json->decode($out);
    return ($r->[0], $r->[1]);
}

check('login', sub {
    my ($u) = dbh()->selectrow_array('select current_user');
    return ($u eq 'app', "user=$u");
});

check('simple_query', sub {
    my $h = dbh();
    my $row = $h->selectrow_arrayref(q{select 1 + 1 as two, 'x' || 'y' as xy});
    my $sth = $h->prepare('select 1 as one', { pg_server_prepare => 0 });
    $sth->execute;
    my $names = join(',', @{ $sth->{NAME} });
    my ($one) = $sth->fetchrow_array;
    $sth->finish;
    return ("@$row" eq '2 xy' && $one == 1 && $names eq 'one', "@$row $one $names");
});

check('param_types', sub {
    my $h = dbh();
    my $sth = $h->prepare('select ?::int4, ?::int8, ?::text, ?::numeric, ?::bool, ?::text, ?::bytea, ?::timestamptz, '
        . "?::float8, to_char(?::timestamptz at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS')");
    my $blob = "\x00\x01\xfe\xff\\";
    $sth->bind_param(7, $blob, { pg_type => PG_BYTEA });
    my @in = (2147483647, '9007199254740993', 'grüße ✓ 日本', '12345.678901234567890', 1, undef, $blob,
        '2024-02-29 12:34:56.789+00', 3.5e-7, '2024-02-29 12:34:56.789+00');
    my @out;
    for my $round (1 .. 3) {  # the first execute uses PQexecParams, the later ones a server-side statement
        $sth->execute(@in);
        @out = $sth->fetchrow_array;
        $sth->finish;
    }
    my $hex = unpack('H*', $out[6]);
    my $ok = $out[0] == 2147483647 && $out[1] eq '9007199254740993' && $out[2] eq 'grüße ✓ 日本'
        && $out[3] eq '12345.678901234567890' && $out[4] == 1 && !defined($out[5]) && $out[6] eq $blob
        && $out[8] == 3.5e-7 && $out[9] eq '2024-02-29T12:34:56.789';
    $out[5] //= 'NULL';
    $out[6] = $hex;
    splice(@out, 7, 1);  # the timestamptz text depends on the session TimeZone; compared as UTC in column 10
    return ($ok, join(' | ', @out));
});

check('many_rows', sub {
    my $rows = dbh()->selectall_arrayref('select g, md5(g::text) from generate_series(1, ?::int) g', undef, 10000);
    my $sum = 0;
    $sum += $_->[0] for @$rows;
    return (@$rows == 10000 && $sum == 50005000, sprintf('rows=%d sum=%d last=%s', scalar @$rows, $sum, $rows->[-1][1]));
});

check('prepared_reuse', sub {
    my $h = dbh();
    my $sth = $h->prepare('select ?::int * 2, ?::text', { pg_server_prepare => 1 });
    my $bad = 0;
    for my $i (1 .. 300) {
        $sth->execute($i, "v$i");
        my @r = $sth->fetchrow_array;
        $bad++ unless $r[0] == $i * 2 && $r[1] eq "v$i";
    }
    my $name = $sth->{pg_prepare_name} // '';
    undef $sth;  # DBD::Pg sends DEALLOCATE for it
    return ($bad == 0 && $name =~ /^dbdpg_/, "bad=$bad named=" . ($name =~ /^dbdpg_/ ? 'yes' : 'no'));
});

check('concurrent_prepared', sub {
    my $h = dbh();
    my $table = t('conc');
    $h->do("create table $table (id int primary key, v text)");
    $h->do("insert into $table select g, 'row' || g from generate_series(1, 50) g");
    $h->{AutoInactiveDestroy} = 1;
    my @pids;
    for my $w (0 .. 4) {
        my $pid = fork();
        die "fork: $!" unless defined $pid;
        if ($pid == 0) {
            my $bad = 0;
            eval {
                my $c = connect_db();
                # DBD::Pg names its statements dbdpg_p<pid>_<n>: five processes, five names for the same SQL;
                # each execution may meet a server the proxy did not prepare it on.
                my $sth = $c->prepare("select v, ?::int from $table where id = ?", { pg_prepare_now => 1 });
                my $cnt = $c->prepare("select count(*) + ?::int from $table");
                for my $i (0 .. 119) {
                    my $id = ($i + $w) % 50 + 1;
                    $sth->execute($w, $id);
                    my @r = $sth->fetchrow_array;
                    $bad++ unless $r[0] eq "row$id" && $r[1] == $w;
                    $cnt->execute($w);
                    my ($n) = $cnt->fetchrow_array;
                    $bad++ unless $n == 50 + $w;
                }
                undef $sth;
                undef $cnt;
                $c->disconnect;
                1;
            } or $bad = 255;
            _exit($bad > 250 ? 250 : $bad);
        }
        push @pids, $pid;
    }
    my @codes;
    for my $pid (@pids) {
        waitpid($pid, 0);
        push @codes, $? >> 8;
    }
    $h->do("drop table $table");
    return (!grep({ $_ != 0 } @codes), "bad=@codes");
});

check('deallocate', sub {
    my $h = dbh();
    # DBD::Pg deallocates a statement when its handle goes away (DEALLOCATE dbdpg_p<pid>_<n>); many cycles.
    my $bad = 0;
    for my $i (1 .. 40) {
        my $sth = $h->prepare('select ?::int + ' . ($i % 4), { pg_prepare_now => 1 });
        $sth->execute($i);
        my ($v) = $sth->fetchrow_array;
        $bad++ unless $v == $i + $i % 4;
    }
    # An application that deallocates a DBD::Pg statement itself: the handle's next execute gets 26000.
    my $sth = $h->prepare('select ?::int * 3', { pg_prepare_now => 1 });
    $sth->execute(1);
    $sth->finish;
    my $name = $sth->{pg_prepare_name};
    $h->do("DEALLOCATE $name");
    my $gone = error_of($h, sub { $sth->execute(2) });
    {
        local $SIG{__WARN__} = sub { };
        undef $sth;  # its own DEALLOCATE now fails; DBD::Pg only warns
    }
    return ($bad == 0 && $gone eq '26000' && usable($h), "bad=$bad after_deallocate=$gone");
});

check('duplicate_prepare', sub {
    my $h = connect_db();  # its own connection: SQL PREPARE pins a client to its server behind a transaction pool
    # DBD::Pg names its statements itself; a name prepared twice comes from SQL PREPARE, which DBD::Pg documents
    # together with pg_prepare_name (it then executes the statement with PQexecPrepared).
    $h->do('PREPARE dup AS select $1::int * 10');
    my $second = error_of($h, sub { $h->do('PREPARE dup AS select 2') });
    my $sth = $h->prepare('select ?');
    $sth->bind_param(1, 1, SQL_INTEGER);
    $sth->{pg_prepare_name} = 'dup';
    $sth->{pg_switch_prepared} = 1;
    $sth->execute(4);
    my ($v) = $sth->fetchrow_array;
    undef $sth;
    my ($w) = $h->selectrow_array('EXECUTE dup(5)');
    $h->do('DEALLOCATE dup');
    my $ok = usable($h);
    $h->disconnect;
    return ($second eq '42P05' && $v == 40 && $w == 50 && $ok, "second_prepare=$second pg_prepare_name=$v execute=$w");
});

check('parse_error_syntax', sub {
    my $h = dbh();
    my $state = error_of($h, sub { $h->prepare('select ? from', { pg_prepare_now => 1 }) });
    my $ok = usable($h);
    my $sth = $h->prepare('select ?::int', { pg_prepare_now => 1 });
    $sth->execute(3);
    my ($v) = $sth->fetchrow_array;
    undef $sth;
    return ($state eq '42601' && $ok && $v == 3, "prepare=$state reprepared=$v");
});

check('parse_error_undefined_table', sub {
    my $h = dbh();
    my $table = t('later');
    my $state = error_of($h, sub { $h->prepare("select x from $table where x = ?", { pg_prepare_now => 1 }) });
    $h->do("create table $table (x int)");
    $h->do("insert into $table values (7)");
    my $sth = $h->prepare("select x from $table where x = ?", { pg_prepare_now => 1 });
    $sth->execute(7);
    my ($v) = $sth->fetchrow_array;
    undef $sth;
    $h->do("drop table $table");
    return ($state eq '42P01' && $v == 7 && usable($h), "prepare=$state after_create=$v");
});

# A statement freed inside a failed transaction: PostgreSQL refuses DBD::Pg's DEALLOCATE (25P02), so the statement
# stays; the same SQL prepared again (under DBD::Pg's next name) works.
sub deallocate_in_failed_tx {
    my ($h, $tag) = @_;
    my $sql = "select 2/?::int as $tag";
    $h->begin_work;
    my $sth = $h->prepare($sql, { pg_prepare_now => 1 });
    my $div = error_of($h, sub { $sth->execute(0) });
    {
        local $SIG{__WARN__} = sub { };
        undef $sth;  # DBD::Pg sends DEALLOCATE dbdpg_p<pid>_<n>: refused in the failed transaction
    }
    $h->rollback;
    my @runs;
    my $again = error_of($h, sub { $sth = $h->prepare($sql, { pg_prepare_now => 1 }) });
    for (1 .. 3) {
        my $v;
        my $state = $sth ? error_of($h, sub { $sth->execute(1); ($v) = $sth->fetchrow_array; }) : 'no-handle';
        push @runs, $state eq 'none' ? $v : $state;
    }
    undef $sth;
    my $d = "error=$div prepare_again=$again runs=" . join(',', @runs);
    return ($d eq 'error=22012 prepare_again=none runs=2,2,2' && usable($h), $d);
}

check('deallocate_in_failed_tx', sub {
    my $h = connect_db();  # its own client: the check leaves statements behind
    my @r = deallocate_in_failed_tx($h, 'ftx');
    $h->disconnect;
    return @r;
});

# The same on a connection with session state (SET search_path): behind a transaction pool it is pinned to its
# server connection.
check('deallocate_in_failed_tx_pinned', sub {
    my $h = connect_db();
    $h->do('set search_path = public');
    my @r = deallocate_in_failed_tx($h, 'ftx_pinned');
    $h->disconnect;
    return @r;
});

# A Parse of SQL that worked before (and is still prepared), after its table was dropped: PostgreSQL fails the
# Parse (42P01).
check('parse_error_after_drop', sub {
    my $h = dbh();
    my $table = t('dropped');
    $h->do("create table $table (x int)");
    $h->do("insert into $table values (1)");
    my $sql = "select x from $table where x > ?";
    my $s1 = $h->prepare($sql, { pg_prepare_now => 1 });
    $s1->execute(0);
    my ($first) = $s1->fetchrow_array;
    $s1->finish;
    $h->do("drop table $table");
    my $s2;
    my $at_prepare = error_of($h, sub { $s2 = $h->prepare($sql, { pg_prepare_now => 1 }) });
    my $at_execute = $s2 ? error_of($h, sub { $s2->execute(0) }) : 'no-handle';
    $h->do("create table $table (x int)");
    my $after_create = $s2 ? error_of($h, sub { $s2->execute(0); $s2->finish }) : 'no-handle';
    {
        local $SIG{__WARN__} = sub { };
        undef $s1;
        undef $s2;
    }
    $h->do("drop table $table");
    return ($first == 1 && $at_prepare eq '42P01' && usable($h),
        "first=$first prepare=$at_prepare execute=$at_execute after_create=$after_create");
});

sub ddl_check {
    my ($busy) = @_;
    # The busy variant uses two clients of their own, with no session state that would pin them behind a
    # transaction pool; the main one is closed first (a session-mode pool of 2 has no room for three).
    if ($busy && $main) {
        local $SIG{__WARN__} = sub { };
        $main->disconnect;
        $main = undef;
    }
    my $h = $busy ? connect_db() : dbh();
    my $table = t($busy ? 'ddl2' : 'ddl');
    $h->do("create table $table (a int, b text)");
    $h->do("insert into $table values (1, 'one')");
    my $sth = $h->prepare("select * from $table where a = ?");
    my $broken = 0;
    my $outcome = sub {
        return 'sth-unusable' if $broken;
        my $res;
        eval {
            $sth->execute(1);
            my $row = $sth->fetchrow_arrayref;
            $res = $sth->{NUM_OF_FIELDS} . 'cols:' . join(',', map { $_ // 'NULL' } @$row);
            $sth->finish;
            1;
        } or do {
            my $err = $@;
            # A result with more columns than the statement handle was prepared for: DBI's fetch fails with
            # "Number of row fields inconsistent with NUM_OF_FIELDS", and the handle can crash DBD::Pg if used again.
            if ($err =~ /inconsistent with NUM_OF_FIELDS/) {
                $broken = 1;
                $res = 'columns-changed-under-handle';
            } else {
                $res = $h->state;
            }
        };
        return $res;
    };
    # DBD::Pg runs the first execute with PQexecParams and prepares the statement on the server at the second.
    my @steps = ($outcome->(), $outcome->());
    my $other;
    if ($busy) {
        # Another connection holds a transaction open: behind a transaction-mode pool the statement then runs on a
        # server connection that never prepared it.
        $other = connect_db();
        $other->begin_work;
        $other->do('select 1');
    }
    $h->do("alter table $table add column c int default 5");
    push @steps, $outcome->(), $outcome->();
    if ($other) {
        $other->commit;
        $other->disconnect;
    }
    push @steps, $outcome->();
    $sth = undef unless $broken;  # a broken handle is left alone (DBD::Pg may crash freeing it)
    my $sth2 = $h->prepare("select * from $table where a = ?");
    $sth2->execute(1);
    my $fresh = $sth2->{NUM_OF_FIELDS} . 'cols:' . join(',', $sth2->fetchrow_array);
    undef $sth2;
    push @steps, $fresh;
    $h->do("drop table $table");
    my $ok = $steps[0] eq '2cols:1,one' && $fresh eq '3cols:1,one,5' && usable($h);
    $h->disconnect if $busy && !$broken;
    return ($ok, join(' | ', @steps));
}
check('ddl_change', sub { ddl_check(0) });
# In a child process with a watchdog: a statement handle whose result gains columns can crash DBD::Pg.
check('ddl_change_busy_server', sub { isolated(sub { ddl_check(1) }, 20) });

check('tx_commit', sub {
    my $h = dbh();
    my $table = t('tx');
    $h->do("create table $table (x int)");
    $h->begin_work;
    $h->do("insert into $table values (?)", undef, 1);
    $h->commit;
    $h->begin_work;
    $h->do("insert into $table values (?)", undef, 2);
    $h->rollback;
    my ($v) = $h->selectrow_array("select array_agg(x order by x)::text from $table");
    $h->do("drop table $table");
    return ($v eq '{1}', "rows=$v");
});

check('tx_error_25P02', sub {
    my $h = dbh();
    $h->begin_work;
    my $first = error_of($h, sub { $h->do('select 1/?::int', undef, 0) });
    my $second = error_of($h, sub { $h->do('select 1') });
    $h->rollback;
    return ($first eq '22012' && $second eq '25P02' && usable($h), "error=$first next=$second");
});

check('savepoint', sub {
    my $h = dbh();
    my $table = t('sp');
    $h->do("create table $table (x int)");
    $h->begin_work;
    $h->do("insert into $table values (1)");
    $h->pg_savepoint('a');
    $h->do("insert into $table values (2)");
    my $err = error_of($h, sub { $h->do('select 1/0') });
    $h->pg_rollback_to('a');
    $h->do("insert into $table values (3)");
    $h->pg_release('a');
    $h->commit;
    my ($v) = $h->selectrow_array("select array_agg(x order by x)::text from $table");
    $h->do("drop table $table");
    return ($v eq '{1,3}' && $err eq '22012', "rows=$v error=$err");
});

check('copy', sub {
    my $h = dbh();
    my $table = t('copy');
    $h->do("create table $table (id int, v text)");
    $h->do("copy $table from stdin");
    $h->pg_putcopydata("$_\tvalue ✓ $_\n") for 1 .. 1000;
    $h->pg_putcopyend;
    $h->do("copy (select * from $table order by id) to stdout");
    my ($row, @out);
    push @out, $row while $h->pg_getcopydata($row) >= 0;
    my $bad = error_of($h, sub {
        $h->do("copy $table from stdin");
        $h->pg_putcopydata("x\tnot an int\n");
        $h->pg_putcopyend;
    });
    my ($n) = $h->selectrow_array("select count(*) from $table");
    $h->do("drop table $table");
    return (@out == 1000 && $out[-1] eq "1000\tvalue ✓ 1000\n" && $n == 1000 && $bad eq '22P02' && usable($h),
        sprintf('out=%d last=%s count=%d bad_row=%s', scalar @out, $json->encode([$out[-1]]), $n, $bad));
});

check('errors', sub {
    my $h = dbh();
    my $table = t('uniq');
    my $div = error_of($h, sub { $h->do('select 1/0') });
    my $divp = error_of($h, sub { $h->selectrow_array('select 1/?::int', undef, 0) });
    $h->do("create table $table (id int primary key)");
    $h->do("insert into $table values (1)");
    my $sth = $h->prepare("insert into $table values (?)");
    my $uniq = error_of($h, sub { $sth->execute(1) });
    my $uniq2 = error_of($h, sub { $sth->execute(1) });  # the second execute runs the server-side statement
    undef $sth;
    $h->do("drop table $table");
    return ($div eq '22012' && $divp eq '22012' && $uniq eq '23505' && $uniq2 eq '23505' && usable($h),
        "div=$div div_param=$divp unique=$uniq,$uniq2");
});

check('notice', sub {
    my $h = connect_db();
    $h->{PrintWarn} = 1;
    my @notices;
    local $SIG{__WARN__} = sub { my $m = shift; $m =~ s/\s+$//; push @notices, $m };
    $h->do(q{do $$ begin raise notice 'hello %', 'perl'; end $$});
    $h->do(q{do $$ begin raise warning 'second'; end $$});
    $h->disconnect;
    return ("@notices" =~ /NOTICE:\s+hello perl.*WARNING:\s+second/s, join(' / ', @notices));
});

if ($scope eq 'all') {
    check('session_listen_notify', sub {
        my $h = dbh();
        $h->do('listen drv_perl');
        my $other = connect_db();
        $other->do(q{notify drv_perl, 'payload ✓'});
        $other->disconnect;
        my $got;
        my $deadline = time + 10;
        until ($got or time > $deadline) {
            $got = $h->pg_notifies;
            sleep 0.05 unless $got;
        }
        $h->do('unlisten *');
        my $d = $got ? "$got->[0] $got->[2]" : 'none';
        return ($d eq 'drv_perl payload ✓', $d);
    });

    check('session_set', sub {
        my $h = dbh();
        $h->do(q{set statement_timeout = '12345ms'});
        $h->do(q{set search_path = 'drv_schema', public});
        sleep 0.2;
        my ($a) = $h->selectrow_array('show statement_timeout');
        my ($b) = $h->selectrow_array('show search_path');
        $h->do('reset statement_timeout');
        $h->do('reset search_path');
        return ($a eq '12345ms' && $b eq 'drv_schema, public', "statement_timeout=$a search_path=$b");
    });

    check('session_temp_table', sub {
        my $h = dbh();
        $h->do('create temp table drv_tmp (x int)');
        $h->do('insert into drv_tmp values (1), (2)');
        sleep 0.2;
        my ($n) = $h->selectrow_array('select count(*) from drv_tmp where x > ?', undef, 0);
        $h->do('drop table drv_tmp');
        return ($n == 2, "count=$n");
    });
}

$main->disconnect if $main;
# Skip global destruction: a statement handle that saw its result gain columns (ddl_change_busy_server behind a proxy
# that gets this wrong) can crash DBD::Pg when freed.
_exit(0);
