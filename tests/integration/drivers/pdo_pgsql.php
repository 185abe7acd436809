<?php
// PHP PDO pgsql (Debian's php-cli + php-pgsql) compatibility checks; run by tests/integration/test_drivers.py.
// Usage: php pdo_pgsql.php URL TABLE_PREFIX all|common native|emulate
//   native:  PDO::ATTR_EMULATE_PREPARES false, server-side prepared statements (pdo_stmt_<n>, DEALLOCATE on destroy)
//   emulate: PDO::ATTR_EMULATE_PREPARES true, parameters interpolated client-side, simple queries only
// Prints one JSON line per check: {"name":..., "ok":..., "detail":...}. "detail" must not depend on the target
// (PostgreSQL or pool64) so the test can compare it with the direct run; "session_" checks run only with "all".

declare(strict_types=1);

[$_, $url, $prefix, $scope, $prepares] = $argv + [null, null, null, null, null];
if ($prepares !== 'native' && $prepares !== 'emulate') {
    fwrite(STDERR, "usage: pdo_pgsql.php URL TABLE_PREFIX all|common native|emulate\n");
    exit(2);
}
$parts = parse_url($url);
$dsn = sprintf('pgsql:host=%s;port=%d;dbname=%s', $parts['host'], $parts['port'], ltrim($parts['path'], '/'));
$user = urldecode($parts['user']);
$password = urldecode($parts['pass']);
$emulate = $prepares === 'emulate';

function connect_db(): PDO
{
    global $dsn, $user, $password, $emulate;
    return new PDO($dsn, $user, $password, [
        PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION,
        PDO::ATTR_EMULATE_PREPARES => $emulate,
        PDO::ATTR_STRINGIFY_FETCHES => false,
    ]);
}

$main = null;
function dbh(): PDO
{
    global $main;
    return $main ??= connect_db();
}

function report(string $name, bool $ok, string $detail): void
{
    echo json_encode(['name' => $name, 'ok' => $ok, 'detail' => $detail], JSON_UNESCAPED_UNICODE), "\n";
}

function check(string $name, callable $f): void
{
    global $main;
    try {
        [$ok, $detail] = $f();
        report($name, $ok, $detail);
    } catch (Throwable $e) {
        $state = $e instanceof PDOException ? ($e->errorInfo[0] ?? $e->getCode()) : get_class($e);
        report($name, false, "exception $state: " . strtok($e->getMessage(), "\n"));
        // The next check starts on a fresh connection, whatever state this one was left in.
        $main = null;
    }
}

// The SQLSTATE of the PDOException the callable throws, or "none".
function error_of(callable $f): string
{
    try {
        $f();
        return 'none';
    } catch (PDOException $e) {
        return (string)($e->errorInfo[0] ?? $e->getCode());
    }
}

function usable(PDO $h): bool
{
    $s = $h->prepare('select 41 + ?::int');
    $s->execute([1]);
    return (int)$s->fetchColumn() === 42;
}

function t(string $suffix): string
{
    global $prefix;
    return "{$prefix}_$suffix";
}

check('login', function () {
    $u = dbh()->query('select current_user')->fetchColumn();
    return [$u === 'app', "user=$u"];
});

check('simple_query', function () {
    $row = dbh()->query("select 1 + 1 as two, 'x' || 'y' as xy")->fetch(PDO::FETCH_ASSOC);
    return [$row === ['two' => 2, 'xy' => 'xy'], json_encode($row)];
});

check('param_types', function () {
    $h = dbh();
    $s = $h->prepare('select ?::int4 as i4, ?::int8 as i8, ?::text as txt, ?::numeric as num, ?::bool as b, '
        . '?::text as nul, ?::bytea as by, ?::timestamptz as tz, ?::float8 as f, '
        . "to_char(?::timestamptz at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS') as tz_utc");
    $blob = "\x00\x01\xfe\xff\\";
    $s->bindValue(1, 2147483647, PDO::PARAM_INT);
    $s->bindValue(2, 9007199254740993, PDO::PARAM_INT);
    $s->bindValue(3, 'grüße ✓ 日本');
    $s->bindValue(4, '12345.678901234567890');
    $s->bindValue(5, true, PDO::PARAM_BOOL);
    $s->bindValue(6, null, PDO::PARAM_NULL);
    $s->bindValue(7, $blob, PDO::PARAM_LOB);
    $s->bindValue(8, '2024-02-29 12:34:56.789+00');
    $s->bindValue(9, 3.5e-7);
    $s->bindValue(10, '2024-02-29 12:34:56.789+00');
    $s->execute();
    $r = $s->fetch(PDO::FETCH_ASSOC);
    $by = is_resource($r['by']) ? stream_get_contents($r['by']) : $r['by'];
    $ok = $r['i4'] === 2147483647 && $r['i8'] === 9007199254740993 && $r['txt'] === 'grüße ✓ 日本'
        && $r['num'] === '12345.678901234567890' && $r['b'] === true && $r['nul'] === null && $by === $blob
        && (float)$r['f'] === 3.5e-7 && $r['tz_utc'] === '2024-02-29T12:34:56.789';
    $r['by'] = bin2hex($by);
    unset($r['tz']);  // its text depends on the session TimeZone; compared as UTC in tz_utc
    return [$ok, json_encode($r, JSON_UNESCAPED_UNICODE)];
});

check('many_rows', function () {
    $s = dbh()->prepare('select g, md5(g::text) as m from generate_series(1, ?::int) g');
    $s->execute([10000]);
    $n = 0;
    $sum = 0;
    $last = '';
    while ($row = $s->fetch(PDO::FETCH_NUM)) {
        $n++;
        $sum += (int)$row[0];
        $last = $row[1];
    }
    return [$n === 10000 && $sum === 50005000, "rows=$n sum=$sum last=$last"];
});

check('prepared_reuse', function () {
    $h = dbh();
    $s = $h->prepare('select ?::int * 2 as a, ?::text as b');
    $bad = 0;
    for ($i = 1; $i <= 300; $i++) {
        $s->execute([$i, "v$i"]);
        $r = $s->fetch(PDO::FETCH_NUM);
        if ($r[0] !== $i * 2 || $r[1] !== "v$i") {
            $bad++;
        }
    }
    $s = null;  // native prepares: PDO sends DEALLOCATE pdo_stmt_<n>
    return [$bad === 0 && usable($h), "bad=$bad"];
});

check('concurrent_prepared', function () {
    $h = dbh();
    $table = t('conc');
    $h->exec("create table $table (id int primary key, v text)");
    $h->exec("insert into $table select g, 'row' || g from generate_series(1, 50) g");
    $pids = [];
    for ($w = 0; $w < 5; $w++) {
        $pid = pcntl_fork();
        if ($pid === -1) {
            throw new RuntimeException('fork failed');
        }
        if ($pid === 0) {
            $bad = 0;
            try {
                // Every process names its first statement pdo_stmt_00000001: the same name for different
                // connections, each execution possibly on a server the proxy did not prepare it on.
                $c = connect_db();
                $s = $c->prepare("select v, ?::int as w from $table where id = ?");
                $cnt = $c->prepare("select count(*) + ?::int from $table");
                for ($i = 0; $i < 120; $i++) {
                    $id = ($i + $w) % 50 + 1;
                    $s->execute([$w, $id]);
                    $r = $s->fetch(PDO::FETCH_NUM);
                    if ($r !== ["row$id", $w]) {
                        $bad++;
                    }
                    $cnt->execute([$w]);
                    if ((int)$cnt->fetchColumn() !== 50 + $w) {
                        $bad++;
                    }
                }
                $s = $cnt = $c = null;
            } catch (Throwable $e) {
                fwrite(STDERR, "worker $w: " . $e->getMessage() . "\n");
                $bad = 250;
            }
            // Leave without PHP's shutdown: it would close the parent's connection, inherited across fork.
            pcntl_exec('/bin/sh', ['-c', 'exit ' . min($bad, 250)]);
            exit(251);
        }
        $pids[] = $pid;
    }
    $codes = [];
    foreach ($pids as $pid) {
        pcntl_waitpid($pid, $status);
        $codes[] = pcntl_wexitstatus($status);
    }
    $h->exec("drop table $table");
    return [array_sum($codes) === 0, 'bad=' . implode(' ', $codes)];
});

/**
 * Runs $f in a child process with its own connection and reports a crash, or a hang after $seconds (PDO answers a
 * Parse that fails with 42P05 with DEALLOCATE and Parse again, without end). The child passes [ok, detail] back
 * through a file. The parent's connection is closed first: a forked child must not share its socket, and behind a
 * session-mode pool of 2 it would hold a server connection the check needs.
 */
function isolated(callable $f, int $seconds): array
{
    global $main;
    $main = null;
    $file = tempnam(sys_get_temp_dir(), 'pdo-check-');
    $pid = pcntl_fork();
    if ($pid === -1) {
        throw new RuntimeException('fork failed');
    }
    if ($pid === 0) {
        try {
            $result = $f();
        } catch (Throwable $e) {
            $state = $e instanceof PDOException ? ($e->errorInfo[0] ?? $e->getCode()) : get_class($e);
            $result = [false, "exception $state: " . strtok($e->getMessage(), "\n")];
        }
        file_put_contents($file, json_encode($result, JSON_UNESCAPED_UNICODE));
        exit(0);
    }
    $deadline = microtime(true) + $seconds;
    while (pcntl_waitpid($pid, $status, WNOHANG) === 0) {
        if (microtime(true) > $deadline) {
            posix_kill($pid, SIGKILL);
            pcntl_waitpid($pid, $status);
            @unlink($file);
            return [false, "no answer within {$seconds}s"];
        }
        usleep(20000);
    }
    $result = json_decode((string)file_get_contents($file), true);
    @unlink($file);
    if (!is_array($result)) {
        $how = pcntl_wifsignaled($status) ? 'killed by signal ' . pcntl_wtermsig($status) : 'exited';
        return [false, "the check's process $how without a result"];
    }
    return $result;
}

check('deallocate', function () {
    $h = dbh();
    // PDO deallocates a server-side statement when its object goes away; many cycles.
    $bad = 0;
    for ($i = 1; $i <= 40; $i++) {
        $s = $h->prepare('select ?::int + ' . ($i % 4));
        $s->execute([$i]);
        if ((int)$s->fetchColumn() !== $i + $i % 4) {
            $bad++;
        }
        $s = null;
    }
    return [$bad === 0 && usable($h), "bad=$bad"];
});

check('sql_prepare', function () {
    $h = connect_db();  // its own connection: SQL PREPARE pins a client to its server behind a transaction pool
    // SQL-level PREPARE/EXECUTE/DEALLOCATE, the way PHP code names its own statements; a name prepared twice.
    $h->exec('PREPARE dup AS select $1::int * 10');
    $second = error_of(fn() => $h->exec('PREPARE dup AS select 2'));
    $v = (int)$h->query('EXECUTE dup(4)')->fetchColumn();
    $h->exec('DEALLOCATE dup');
    $gone = error_of(fn() => $h->query('EXECUTE dup(5)'));
    return [$second === '42P05' && $v === 40 && $gone === '26000' && usable($h),
        "second_prepare=$second execute=$v after_deallocate=$gone"];
});

check('parse_error_syntax', function () {
    $h = dbh();
    // PDO prepares on the server at the first execute.
    $state = error_of(function () use ($h) {
        $s = $h->prepare('select ? from');
        $s->execute([1]);
    });
    $ok = usable($h);
    $s = $h->prepare('selec ?');
    $state2 = error_of(fn() => $s->execute([1]));
    return [$state === '42601' && $state2 === '42601' && $ok && usable($h), "execute=$state,$state2"];
});

check('parse_error_undefined_table', function () {
    $h = dbh();
    $table = t('later');
    $state = error_of(function () use ($h, $table) {
        $s = $h->prepare("select x from $table where x = ?");
        $s->execute([7]);
    });
    $h->exec("create table $table (x int)");
    $h->exec("insert into $table values (7)");
    $s = $h->prepare("select x from $table where x = ?");
    $s->execute([7]);
    $v = (int)$s->fetchColumn();
    $s = null;
    $h->exec("drop table $table");
    return [$state === '42P01' && $v === 7 && usable($h), "execute=$state after_create=$v"];
});

// A statement freed inside a failed transaction: PostgreSQL refuses PDO's DEALLOCATE (25P02), so the statement stays;
// the same SQL prepared again (under PDO's next name) works. Run in a child with a watchdog.
function deallocate_in_failed_tx(PDO $h, string $tag): array
{
    $sql = "select 2/?::int as $tag";
    $h->beginTransaction();
    $s = $h->prepare($sql);
    $div = error_of(fn() => $s->execute([0]));
    $s = null;  // PDO sends DEALLOCATE pdo_stmt_<n>: refused in the failed transaction
    $h->rollBack();
    $runs = [];
    for ($i = 0; $i < 3; $i++) {
        $s = $h->prepare($sql);
        $v = null;
        $state = error_of(function () use ($s, &$v) {
            $s->execute([1]);
            $v = $s->fetchColumn();
        });
        $runs[] = $state === 'none' ? (string)$v : $state;
        $s = null;
    }
    $d = "error=$div runs=" . implode(',', $runs);
    return [$d === 'error=22012 runs=2,2,2' && usable($h), $d];
}

check('deallocate_in_failed_tx', fn() => isolated(fn() => deallocate_in_failed_tx(dbh(), 'ftx'), 10));

// The same on a connection with session state (SET search_path, as frameworks do at connect): behind a transaction
// pool it is pinned to its server connection.
check('deallocate_in_failed_tx_pinned', fn() => isolated(function () {
    $h = dbh();
    $h->exec('set search_path = public');
    return deallocate_in_failed_tx($h, 'ftx_pinned');
}, 10));

// A Parse of SQL that worked before (and is still prepared), after its table was dropped: PostgreSQL fails the
// Parse (42P01). PDO prepares at the first execute.
check('parse_error_after_drop', function () {
    $h = dbh();
    $table = t('dropped');
    $h->exec("create table $table (x int)");
    $h->exec("insert into $table values (1)");
    $sql = "select x from $table where x > ?";
    $s1 = $h->prepare($sql);
    $s1->execute([0]);
    $first = (int)$s1->fetchColumn();
    $h->exec("drop table $table");
    $s2 = $h->prepare($sql);
    $atExecute = error_of(fn() => $s2->execute([0]));
    $h->exec("create table $table (x int)");
    $afterCreate = error_of(fn() => $s2->execute([0]));
    $s1 = $s2 = null;
    $h->exec("drop table $table");
    return [$first === 1 && $atExecute === '42P01' && $afterCreate === 'none' && usable($h),
        "first=$first execute=$atExecute after_create=$afterCreate"];
});

function ddl_check(bool $busy): array
{
    $h = dbh();
    $table = t($busy ? 'ddl2' : 'ddl');
    $h->exec("create table $table (a int, b text)");
    $h->exec("insert into $table values (1, 'one')");
    global $emulate;
    $s = $h->prepare("select * from $table where a = ?");
    $outcome = function () use (&$s, $h, $table, $emulate) {
        try {
            if ($emulate) {
                // Emulated prepares keep no server statement; a fresh PDOStatement each time, as PHP 8.2 corrupts
                // memory when a statement's result gains columns between executions.
                $s = $h->prepare("select * from $table where a = ?");
            }
            $s->execute([1]);
            $rows = $s->fetchAll(PDO::FETCH_NUM);
            return $s->columnCount() . 'cols:' . json_encode($rows);
        } catch (PDOException $e) {
            return (string)$e->errorInfo[0];
        }
    };
    $steps = [$outcome()];
    $other = null;
    if ($busy) {
        // Another connection holds a transaction open: behind a transaction-mode pool the statement then runs on a
        // server connection that never prepared it.
        $other = connect_db();
        $other->beginTransaction();
        $other->query('select 1');
    }
    $h->exec("alter table $table add column c int default 5");
    $steps[] = $outcome();
    $steps[] = $outcome();
    if ($other) {
        $other->commit();
        $other = null;
    }
    $steps[] = $outcome();
    $s = null;
    $s2 = $h->prepare("select * from $table where a = ?");
    $s2->execute([1]);
    $steps[] = $s2->columnCount() . 'cols:' . json_encode($s2->fetchAll(PDO::FETCH_NUM));
    $s2 = null;
    $h->exec("drop table $table");
    return [$steps[0] === '2cols:[[1,"one"]]' && end($steps) === '3cols:[[1,"one",5]]' && usable($h),
        implode(' | ', $steps)];
}

// In a child with a watchdog: a result with more columns than the statement had can crash PHP.
check('ddl_change', fn() => isolated(fn() => ddl_check(false), 20));
check('ddl_change_busy_server', fn() => isolated(fn() => ddl_check(true), 20));

check('tx_commit', function () {
    $h = dbh();
    $table = t('tx');
    $h->exec("create table $table (x int)");
    $h->beginTransaction();
    $h->prepare("insert into $table values (?)")->execute([1]);
    $h->commit();
    $h->beginTransaction();
    $h->prepare("insert into $table values (?)")->execute([2]);
    $h->rollBack();
    $v = $h->query("select array_agg(x order by x)::text from $table")->fetchColumn();
    $h->exec("drop table $table");
    return [$v === '{1}', "rows=$v"];
});

check('tx_error_25P02', function () {
    $h = dbh();
    $h->beginTransaction();
    $first = error_of(fn() => $h->prepare('select 1/?::int as tx_error')->execute([0]));
    $second = error_of(fn() => $h->query('select 1'));
    $inTx = $h->inTransaction();
    $h->rollBack();
    return [$first === '22012' && $second === '25P02' && $inTx && usable($h), "error=$first next=$second"];
});

check('savepoint', function () {
    $h = dbh();
    $table = t('sp');
    $h->exec("create table $table (x int)");
    $h->beginTransaction();
    $h->exec("insert into $table values (1)");
    $h->exec('savepoint a');
    $h->exec("insert into $table values (2)");
    $err = error_of(fn() => $h->exec('select 1/0'));
    $h->exec('rollback to savepoint a');
    $h->exec("insert into $table values (3)");
    $h->exec('release savepoint a');
    $h->commit();
    $v = $h->query("select array_agg(x order by x)::text from $table")->fetchColumn();
    $h->exec("drop table $table");
    return [$v === '{1,3}' && $err === '22012', "rows=$v error=$err"];
});

check('copy', function () {
    $h = dbh();
    $table = t('copy');
    $h->exec("create table $table (id int, v text)");
    $rows = [];
    for ($i = 1; $i <= 1000; $i++) {
        $rows[] = "$i\tvalue ✓ $i";
    }
    $in = $h->pgsqlCopyFromArray($table, $rows);
    $out = $h->pgsqlCopyToArray($table);
    $bad = error_of(fn() => $h->pgsqlCopyFromArray($table, ["x\tnot an int"]));
    $n = (int)$h->query("select count(*) from $table")->fetchColumn();
    $h->exec("drop table $table");
    $last = $out ? end($out) : '';
    return [$in && count($out) === 1000 && $last === "1000\tvalue ✓ 1000\n" && $n === 1000 && $bad === '22P02'
        && usable($h), 'out=' . count($out) . ' last=' . json_encode($last, JSON_UNESCAPED_UNICODE)
        . " count=$n bad_row=$bad"];
});

check('errors', function () {
    $h = dbh();
    $table = t('uniq');
    $div = error_of(fn() => $h->query('select 1/0'));
    $divp = error_of(fn() => $h->prepare('select 1/?::int')->execute([0]));
    $h->exec("create table $table (id int primary key)");
    $h->exec("insert into $table values (1)");
    $s = $h->prepare("insert into $table values (?)");
    $uniq = error_of(fn() => $s->execute([1]));
    $uniq2 = error_of(fn() => $s->execute([1]));
    $s = null;
    $h->exec("drop table $table");
    return [$div === '22012' && $divp === '22012' && $uniq === '23505' && $uniq2 === '23505' && usable($h),
        "div=$div div_param=$divp unique=$uniq,$uniq2"];
});

// PDO pgsql in PHP 8.2 has no notice callback (PHP 8.4 adds Pdo\Pgsql::setNoticeCallback): no notice check.

if ($scope === 'all') {
    check('session_listen_notify', function () {
        $h = dbh();
        $h->exec('listen drv_php');
        $other = connect_db();
        $other->exec("notify drv_php, 'payload ✓'");
        $other = null;
        $n = $h->pgsqlGetNotify(PDO::FETCH_ASSOC, 10000);
        $h->exec('unlisten *');
        $d = $n ? "{$n['message']} {$n['payload']}" : 'none';
        return [$d === 'drv_php payload ✓', $d];
    });

    check('session_set', function () {
        $h = dbh();
        $h->exec("set statement_timeout = '12345ms'");
        $h->exec("set search_path = 'drv_schema', public");
        usleep(200000);
        $a = $h->query('show statement_timeout')->fetchColumn();
        $b = $h->query('show search_path')->fetchColumn();
        $h->exec('reset statement_timeout');
        $h->exec('reset search_path');
        return [$a === '12345ms' && $b === 'drv_schema, public', "statement_timeout=$a search_path=$b"];
    });

    check('session_temp_table', function () {
        $h = dbh();
        $h->exec('create temp table drv_tmp (x int)');
        $h->exec('insert into drv_tmp values (1), (2)');
        usleep(200000);
        $s = $h->prepare('select count(*) from drv_tmp where x > ?');
        $s->execute([0]);
        $n = (int)$s->fetchColumn();
        $h->exec('drop table drv_tmp');
        return [$n === 2, "count=$n"];
    });
}
