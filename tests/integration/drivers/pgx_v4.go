// pgx v4 (Debian's golang-github-jackc-pgx-v4-dev, built in GOPATH mode) compatibility checks; run by
// tests/integration/test_drivers.py.
// Usage: pgx_v4 URL TABLE_PREFIX all|common
// Prints one JSON line per check: {"name":..., "ok":..., "detail":...}. "detail" must not depend on the target
// (PostgreSQL or pool64) so the test can compare it with the direct run; "session_" checks run only with "all".
package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgconn"
	"github.com/jackc/pgconn/stmtcache"
	"github.com/jackc/pgtype"
	"github.com/jackc/pgx/v4"
)

var (
	url, prefix, scope string
	ctx                = context.Background()
	mainConn           *pgx.Conn
)

func report(name string, ok bool, detail string) {
	line, _ := json.Marshal(map[string]interface{}{"name": name, "ok": ok, "detail": detail})
	fmt.Println(string(line))
}

// state is the SQLSTATE of err, "none" without an error.
func state(err error) string {
	if err == nil {
		return "none"
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return "not-a-server-error: " + err.Error()
}

func connectWith(mutate func(*pgx.ConnConfig)) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, err
	}
	if mutate != nil {
		mutate(cfg)
	}
	return pgx.ConnectConfig(ctx, cfg)
}

func connect() (*pgx.Conn, error) { return connectWith(nil) }

func conn() *pgx.Conn {
	if mainConn == nil {
		c, err := connect()
		if err != nil {
			panic(err)
		}
		mainConn = c
	}
	return mainConn
}

func check(name string, f func() (bool, string, error)) {
	var ok bool
	var detail string
	var err error
	func() {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("panic: %v", r)
			}
		}()
		ok, detail, err = f()
	}()
	if err != nil {
		report(name, false, fmt.Sprintf("error %s: %v", state(err), err))
		// The next check starts on a fresh connection, whatever state this one was left in.
		if mainConn != nil {
			mainConn.Close(ctx)
			mainConn = nil
		}
		return
	}
	report(name, ok, detail)
}

// makeTable creates PREFIX_suffix with the given columns; drop removes it.
func makeTable(c *pgx.Conn, suffix, columns string) (string, func(), error) {
	name := t(suffix)
	if _, err := c.Exec(ctx, "create table "+name+" ("+columns+")"); err != nil {
		return "", nil, err
	}
	return name, func() { c.Exec(ctx, "drop table "+name) }, nil
}

func usable(c *pgx.Conn) bool {
	var v int
	return c.QueryRow(ctx, "select 41 + $1::int", 1).Scan(&v) == nil && v == 42
}

func t(suffix string) string { return prefix + "_" + suffix }

// queryShape runs sql and describes the result: "<n>cols:<rows>" or the SQLSTATE of its error.
func queryShape(c *pgx.Conn, sql string, args ...interface{}) string {
	rows, err := c.Query(ctx, sql, args...)
	if err != nil {
		return state(err)
	}
	var out []string
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			rows.Close()
			return "scan: " + err.Error()
		}
		out = append(out, fmt.Sprint(vals))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return state(err)
	}
	return fmt.Sprintf("%dcols:%v", len(rows.FieldDescriptions()), out)
}

// numericText renders a numeric exactly, with its scale (pgtype.Numeric.Value gives "12345678901234567890e-15").
func numericText(n pgtype.Numeric) string {
	if n.Status != pgtype.Present || n.NaN {
		return fmt.Sprint(n.Status, n.NaN)
	}
	if n.Exp >= 0 {
		return new(big.Int).Mul(n.Int, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n.Exp)), nil)).String()
	}
	den := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(-n.Exp)), nil)
	return new(big.Rat).SetFrac(n.Int, den).FloatString(int(-n.Exp))
}

// execPrepared runs a server-side statement by name with text parameters (pgconn, below pgx's own bookkeeping):
// the first column of the first row, "norows", or the SQLSTATE of the error.
func execPrepared(c *pgx.Conn, name string, params ...string) string {
	values := make([][]byte, len(params))
	for i, p := range params {
		values[i] = []byte(p)
	}
	res := c.PgConn().ExecPrepared(ctx, name, values, nil, nil).Read()
	if res.Err != nil {
		return state(res.Err)
	}
	if len(res.Rows) == 0 {
		return "norows"
	}
	return string(res.Rows[0][0])
}

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: pgx_v4 URL TABLE_PREFIX all|common")
		os.Exit(2)
	}
	url, prefix, scope = os.Args[1], os.Args[2], os.Args[3]

	check("login", func() (bool, string, error) {
		var user string
		if err := conn().QueryRow(ctx, "select current_user").Scan(&user); err != nil {
			return false, "", err
		}
		return user == "app", "user=" + user, nil
	})

	check("simple_query", func() (bool, string, error) {
		c := conn()
		tag, err := c.Exec(ctx, "select 1; select 2") // no arguments: the simple protocol
		if err != nil {
			return false, "", err
		}
		var two int
		var xy string
		err = c.QueryRow(ctx, "select 1 + 1, 'x' || 'y'", pgx.QuerySimpleProtocol(true)).Scan(&two, &xy)
		if err != nil {
			return false, "", err
		}
		d := fmt.Sprintf("tag=%s two=%d xy=%s", tag, two, xy)
		return tag.String() == "SELECT 1" && two == 2 && xy == "xy", d, nil
	})

	check("param_types", func() (bool, string, error) {
		ts := time.Date(2024, 2, 29, 12, 34, 56, 789000000, time.UTC)
		blob := []byte{0, 1, 0xfe, 0xff, '\\'}
		var (
			i4   int32
			i8   int64
			txt  string
			num  pgtype.Numeric
			b    bool
			null *string
			by   []byte
			tz   time.Time
			f    float64
		)
		err := conn().QueryRow(ctx,
			"select $1::int4, $2::int8, $3::text, $4::numeric, $5::bool, $6::text, $7::bytea, $8::timestamptz, $9::float8",
			int32(2147483647), int64(9007199254740993), "grüße ✓ 日本", "12345.678901234567890", true, nil, blob, ts, 3.5e-7,
		).Scan(&i4, &i8, &txt, &num, &b, &null, &by, &tz, &f)
		if err != nil {
			return false, "", err
		}
		numText := numericText(num)
		d := fmt.Sprintf("%d %d %q %v %v %v %s %s %g", i4, i8, txt, numText, b, null, hex.EncodeToString(by),
			tz.UTC().Format(time.RFC3339Nano), f)
		ok := i4 == 2147483647 && i8 == 9007199254740993 && txt == "grüße ✓ 日本" && numText == "12345.678901234567890" &&
			b && null == nil && bytes.Equal(by, blob) && tz.Equal(ts) && f == 3.5e-7
		return ok, d, nil
	})

	check("many_rows", func() (bool, string, error) {
		rows, err := conn().Query(ctx, "select g, md5(g::text) from generate_series(1, $1::int) g", 10000)
		if err != nil {
			return false, "", err
		}
		n, sum, last := 0, 0, ""
		for rows.Next() {
			var g int
			if err := rows.Scan(&g, &last); err != nil {
				rows.Close()
				return false, "", err
			}
			n++
			sum += g
		}
		rows.Close()
		if rows.Err() != nil {
			return false, "", rows.Err()
		}
		return n == 10000 && sum == 50005000, fmt.Sprintf("rows=%d sum=%d last=%s", n, sum, last), nil
	})

	check("prepared_reuse", func() (bool, string, error) {
		c := conn()
		// The statement cache prepares the SQL once and reuses it; a named Prepare is used by name.
		bad := 0
		for i := 0; i < 300; i++ {
			var a int
			var s string
			if err := c.QueryRow(ctx, "select $1::int * 2, $2::text", i, fmt.Sprint("v", i)).Scan(&a, &s); err != nil {
				return false, "", err
			}
			if a != i*2 || s != fmt.Sprint("v", i) {
				bad++
			}
		}
		if _, err := c.Prepare(ctx, "reuse", "select $1::int + 1"); err != nil {
			return false, "", err
		}
		for i := 0; i < 100; i++ {
			var a int
			if err := c.QueryRow(ctx, "reuse", i).Scan(&a); err != nil {
				return false, "", err
			}
			if a != i+1 {
				bad++
			}
		}
		if err := c.Deallocate(ctx, "reuse"); err != nil {
			return false, "", err
		}
		return bad == 0, fmt.Sprintf("bad=%d", bad), nil
	})

	check("concurrent_prepared", func() (bool, string, error) {
		c := conn()
		table, drop, err := makeTable(c, "conc", "id int primary key, v text")
		if err != nil {
			return false, "", err
		}
		defer drop()
		if _, err := c.Exec(ctx, "insert into "+table+" select g, 'row' || g from generate_series(1, 50) g"); err != nil {
			return false, "", err
		}
		// Five connections at once, each with a statement cache of 3 for 5 SQL texts: every few queries the cache
		// evicts (DEALLOCATE) and prepares again, and each execution may meet a server that never prepared it.
		sqls := []string{
			"select v, $2::int from " + table + " where id = $1",
			"select v || '', $2::int from " + table + " where id = $1",
			"select upper(v), $2::int from " + table + " where id = $1",
			"select v, $2::int + 0 from " + table + " where id = $1 and true",
			"select lower(v), $2::int from " + table + " where id = $1",
		}
		var wg sync.WaitGroup
		results := make([]string, 5)
		for w := 0; w < 5; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				wc, err := connectWith(func(cfg *pgx.ConnConfig) {
					cfg.BuildStatementCache = func(pc *pgconn.PgConn) stmtcache.Cache {
						return stmtcache.New(pc, stmtcache.ModePrepare, 3)
					}
				})
				if err != nil {
					results[w] = "connect: " + state(err)
					return
				}
				defer wc.Close(ctx)
				bad := 0
				for i := 0; i < 100; i++ {
					id := (i+w)%50 + 1
					var v string
					var got int
					if err := wc.QueryRow(ctx, sqls[i%len(sqls)], id, w).Scan(&v, &got); err != nil {
						results[w] = fmt.Sprintf("query %d: %s", i, state(err))
						return
					}
					if strings.ToLower(v) != fmt.Sprint("row", id) || got != w {
						bad++
					}
				}
				results[w] = fmt.Sprintf("bad=%d", bad)
			}(w)
		}
		wg.Wait()
		ok := true
		for _, r := range results {
			ok = ok && r == "bad=0"
		}
		return ok, strings.Join(results, " "), nil
	})

	check("batch", func() (bool, string, error) {
		c := conn()
		b := &pgx.Batch{}
		b.Queue("select $1::int", 1)
		b.Queue("select $1::text || 'b'", "a")
		b.Queue("select 1/$1::int", 0)
		b.Queue("select $1::int", 4)
		br := c.SendBatch(ctx, b)
		var one int
		var ab string
		e1 := br.QueryRow().Scan(&one)
		e2 := br.QueryRow().Scan(&ab)
		var x int
		e3 := br.QueryRow().Scan(&x)
		e4 := br.QueryRow().Scan(&x)
		closeErr := br.Close()
		d := fmt.Sprintf("%d %s %s %s %s close=%s", one, ab, state(e1), state(e2), state(e3), state(e4)+"/"+state(closeErr))
		return e1 == nil && e2 == nil && one == 1 && ab == "ab" && state(e3) == "22012" && usable(c), d, nil
	})

	check("deallocate", func() (bool, string, error) {
		c := conn()
		if _, err := c.Prepare(ctx, "dealloc_me", "select 1"); err != nil {
			return false, "", err
		}
		var a, b int
		if err := c.QueryRow(ctx, "dealloc_me").Scan(&a); err != nil {
			return false, "", err
		}
		if err := c.Deallocate(ctx, "dealloc_me"); err != nil { // sends: deallocate "dealloc_me"
			return false, "", err
		}
		gone := state(c.PgConn().ExecPrepared(ctx, "dealloc_me", nil, nil, nil).Read().Err)
		if _, err := c.Prepare(ctx, "dealloc_me", "select 2"); err != nil {
			return false, "", err
		}
		if err := c.QueryRow(ctx, "dealloc_me").Scan(&b); err != nil {
			return false, "", err
		}
		if err := c.Deallocate(ctx, "dealloc_me"); err != nil {
			return false, "", err
		}
		return a == 1 && gone == "26000" && b == 2, fmt.Sprintf("first=%d after_deallocate=%s reprepared=%d", a, gone, b), nil
	})

	check("duplicate_prepare", func() (bool, string, error) {
		c := conn()
		if _, err := c.Prepare(ctx, "dup", "select 1"); err != nil {
			return false, "", err
		}
		_, err := c.Prepare(ctx, "dup", "select 2")
		second := state(err)
		var v int
		if err := c.QueryRow(ctx, "dup").Scan(&v); err != nil {
			return false, "", err
		}
		if err := c.Deallocate(ctx, "dup"); err != nil {
			return false, "", err
		}
		return second == "42P05" && v == 1 && usable(c), fmt.Sprintf("second_prepare=%s original=%d", second, v), nil
	})

	check("parse_error_syntax", func() (bool, string, error) {
		c := conn()
		_, err := c.Prepare(ctx, "bad_syntax", "selec 1")
		named := state(err)
		cached := queryShape(c, "selec $1::int", 1) // through the statement cache
		if _, err := c.Prepare(ctx, "bad_syntax", "select 3"); err != nil {
			return false, "", err
		}
		var v int
		if err := c.QueryRow(ctx, "bad_syntax").Scan(&v); err != nil {
			return false, "", err
		}
		c.Deallocate(ctx, "bad_syntax")
		return named == "42601" && cached == "42601" && v == 3 && usable(c),
			fmt.Sprintf("prepare=%s cached_query=%s reprepared=%d", named, cached, v), nil
	})

	check("parse_error_undefined_table", func() (bool, string, error) {
		c := conn()
		table := t("later")
		_, err := c.Prepare(ctx, "bad_table", "select x from "+table)
		named := state(err)
		before := queryShape(c, "select x from "+table+" where x = $1", 7)
		if _, err := c.Exec(ctx, "create table "+table+" (x int); insert into "+table+" values (7)"); err != nil {
			return false, "", err
		}
		defer c.Exec(ctx, "drop table "+table)
		after := queryShape(c, "select x from "+table+" where x = $1", 7)
		if _, err := c.Prepare(ctx, "bad_table", "select x from "+table); err != nil {
			return false, "", err
		}
		var v int
		if err := c.QueryRow(ctx, "bad_table").Scan(&v); err != nil {
			return false, "", err
		}
		c.Deallocate(ctx, "bad_table")
		return named == "42P01" && before == "42P01" && after == "1cols:[[7]]" && v == 7 && usable(c),
			fmt.Sprintf("prepare=%s cached_query=%s after_create=%s named=%d", named, before, after, v), nil
	})

	// A statement deallocated inside a failed transaction: PostgreSQL refuses the DEALLOCATE (25P02), so the
	// statement stays; the same SQL prepared again under another name works.
	deallocateInFailedTx := func(c *pgx.Conn, tag string) (bool, string, error) {
		sql := "select 2/$1::int as " + tag
		tx, err := c.Begin(ctx)
		if err != nil {
			return false, "", err
		}
		if _, err := tx.Prepare(ctx, "ftx1", sql); err != nil {
			return false, "", err
		}
		_, err = tx.Exec(ctx, "ftx1", 0)
		div := state(err)
		dealloc := state(c.Deallocate(ctx, "ftx1"))
		if err := tx.Rollback(ctx); err != nil {
			return false, "", err
		}
		still := execPrepared(c, "ftx1", "1")
		_, err = c.Prepare(ctx, "ftx2", sql)
		again := state(err)
		var runs []string
		for i := 0; i < 3; i++ {
			runs = append(runs, execPrepared(c, "ftx2", "1"))
		}
		c.Deallocate(ctx, "ftx1")
		c.Deallocate(ctx, "ftx2")
		d := fmt.Sprintf("error=%s deallocate=%s old_name=%s prepare_again=%s runs=%s", div, dealloc, still, again,
			strings.Join(runs, ","))
		return d == "error=22012 deallocate=25P02 old_name=2 prepare_again=none runs=2,2,2" && usable(c), d, nil
	}
	check("deallocate_in_failed_tx", func() (bool, string, error) {
		c, err := connect() // its own client: the check leaves statements behind
		if err != nil {
			return false, "", err
		}
		defer c.Close(ctx)
		return deallocateInFailedTx(c, "ftx")
	})
	// The same on a connection with session state (SET search_path): behind a transaction pool it is pinned to its
	// server connection.
	check("deallocate_in_failed_tx_pinned", func() (bool, string, error) {
		c, err := connect()
		if err != nil {
			return false, "", err
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "set search_path = public"); err != nil {
			return false, "", err
		}
		return deallocateInFailedTx(c, "ftx_pinned")
	})

	// A Parse of SQL that worked before (and is still prepared), after its table was dropped: PostgreSQL fails the
	// Parse (42P01), and the name stays free.
	check("parse_error_after_drop", func() (bool, string, error) {
		c := conn()
		table := t("dropped")
		if _, err := c.Exec(ctx, "create table "+table+" (x int); insert into "+table+" values (1)"); err != nil {
			return false, "", err
		}
		sql := "select x from " + table
		if _, err := c.Prepare(ctx, "pad1", sql); err != nil {
			return false, "", err
		}
		first := execPrepared(c, "pad1")
		if _, err := c.Exec(ctx, "drop table "+table); err != nil {
			return false, "", err
		}
		_, err := c.Prepare(ctx, "pad2", sql)
		atPrepare := state(err)
		atExecute := execPrepared(c, "pad2")
		if _, err := c.Exec(ctx, "create table "+table+" (x int)"); err != nil {
			return false, "", err
		}
		afterCreate := execPrepared(c, "pad2")
		c.Exec(ctx, "drop table "+table)
		c.Deallocate(ctx, "pad1")
		c.Deallocate(ctx, "pad2")
		d := fmt.Sprintf("first=%s prepare=%s execute=%s after_create=%s", first, atPrepare, atExecute, afterCreate)
		return first == "1" && atPrepare == "42P01" && usable(c), d, nil
	})

	// A prepared SELECT * (here: pgx's statement cache) whose table gains a column. On PostgreSQL the next execution
	// gets 0A000 "cached plan must not change result type"; pgx then drops the statement and prepares it again.
	ddl := func(busy bool) func() (bool, string, error) {
		return func() (bool, string, error) {
			c := conn()
			table := t("ddl")
			if busy {
				// Two clients of their own, with no session state that would pin them behind a transaction pool;
				// the main one is closed first (a session-mode pool of 2 has no room for three).
				if mainConn != nil {
					mainConn.Close(ctx)
					mainConn = nil
				}
				var err error
				if c, err = connect(); err != nil {
					return false, "", err
				}
				defer c.Close(ctx)
				table = t("ddl2")
			}
			if _, err := c.Exec(ctx, "create table "+table+" (a int, b text); insert into "+table+" values (1, 'one')"); err != nil {
				return false, "", err
			}
			defer c.Exec(ctx, "drop table "+table)
			sql := "select * from " + table + " where a = $1"
			steps := []string{queryShape(c, sql, 1)}
			var other *pgx.Conn
			if busy {
				// Another connection holds a transaction open: behind a transaction-mode pool, the statement then
				// runs on a server connection that never prepared it.
				var err error
				if other, err = connect(); err != nil {
					return false, "", err
				}
				if _, err := other.Exec(ctx, "begin; select 1"); err != nil {
					return false, "", err
				}
			}
			if _, err := c.Exec(ctx, "alter table "+table+" add column c int default 5"); err != nil {
				return false, "", err
			}
			steps = append(steps, queryShape(c, sql, 1), queryShape(c, sql, 1))
			if other != nil {
				other.Exec(ctx, "commit")
				other.Close(ctx)
			}
			steps = append(steps, queryShape(c, sql, 1))
			return steps[0] == "2cols:[[1 one]]" && steps[3] == "3cols:[[1 one 5]]" && usable(c), strings.Join(steps, " | "), nil
		}
	}
	check("ddl_change", ddl(false))
	check("ddl_change_busy_server", ddl(true))

	check("tx_commit", func() (bool, string, error) {
		c := conn()
		table, drop, err := makeTable(c, "tx", "x int")
		if err != nil {
			return false, "", err
		}
		defer drop()
		err = c.BeginFunc(ctx, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, "insert into "+table+" values ($1)", 1)
			return err
		})
		if err != nil {
			return false, "", err
		}
		tx, err := c.Begin(ctx)
		if err != nil {
			return false, "", err
		}
		if _, err := tx.Exec(ctx, "insert into "+table+" values ($1)", 2); err != nil {
			return false, "", err
		}
		if err := tx.Rollback(ctx); err != nil {
			return false, "", err
		}
		var v string
		if err := c.QueryRow(ctx, "select array_agg(x order by x)::text from "+table).Scan(&v); err != nil {
			return false, "", err
		}
		return v == "{1}", "rows=" + v, nil
	})

	check("tx_error_25P02", func() (bool, string, error) {
		c := conn()
		tx, err := c.Begin(ctx)
		if err != nil {
			return false, "", err
		}
		_, err = tx.Exec(ctx, "select 1/$1::int", 0)
		first := state(err)
		inError := c.PgConn().TxStatus() == 'E'
		_, err = tx.Exec(ctx, "select $1::int", 1)
		second := state(err)
		if err := tx.Rollback(ctx); err != nil {
			return false, "", err
		}
		return first == "22012" && second == "25P02" && inError && usable(c),
			fmt.Sprintf("error=%s next=%s inerror=%v", first, second, inError), nil
	})

	check("savepoint", func() (bool, string, error) {
		c := conn()
		table, drop, err := makeTable(c, "sp", "x int")
		if err != nil {
			return false, "", err
		}
		defer drop()
		tx, err := c.Begin(ctx)
		if err != nil {
			return false, "", err
		}
		tx.Exec(ctx, "insert into "+table+" values (1)")
		sp, err := tx.Begin(ctx) // a nested pgx transaction is a savepoint
		if err != nil {
			return false, "", err
		}
		sp.Exec(ctx, "insert into "+table+" values (2)")
		_, err = sp.Exec(ctx, "select 1/$1::int", 0)
		inner := state(err)
		if err := sp.Rollback(ctx); err != nil {
			return false, "", err
		}
		tx.Exec(ctx, "insert into "+table+" values (3)")
		if err := tx.Commit(ctx); err != nil {
			return false, "", err
		}
		var v string
		if err := c.QueryRow(ctx, "select array_agg(x order by x)::text from "+table).Scan(&v); err != nil {
			return false, "", err
		}
		return v == "{1,3}" && inner == "22012", fmt.Sprintf("rows=%s error=%s", v, inner), nil
	})

	check("copy", func() (bool, string, error) {
		c := conn()
		table, drop, err := makeTable(c, "copy", "id int, v text")
		if err != nil {
			return false, "", err
		}
		defer drop()
		rows := make([][]interface{}, 1000)
		for i := range rows {
			rows[i] = []interface{}{int32(i + 1), fmt.Sprintf("value ✓ %d", i+1)}
		}
		n, err := c.CopyFrom(ctx, pgx.Identifier{table}, []string{"id", "v"}, pgx.CopyFromRows(rows)) // binary COPY
		if err != nil {
			return false, "", err
		}
		var out bytes.Buffer
		tag, err := c.PgConn().CopyTo(ctx, &out, "copy (select * from "+table+" order by id) to stdout")
		if err != nil {
			return false, "", err
		}
		lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
		_, err = c.PgConn().CopyFrom(ctx, strings.NewReader("x\tnot an int\n"), "copy "+table+" from stdin")
		bad := state(err)
		d := fmt.Sprintf("in=%d out=%s last=%q bad_row=%s", n, tag, lines[len(lines)-1], bad)
		return n == 1000 && len(lines) == 1000 && lines[999] == "1000\tvalue ✓ 1000" && bad == "22P02" && usable(c), d, nil
	})

	check("errors", func() (bool, string, error) {
		c := conn()
		table := t("uniq")
		_, err := c.Exec(ctx, "select 1/0")
		div := state(err)
		var x int
		divp := state(c.QueryRow(ctx, "select 1/$1::int", 0).Scan(&x))
		if _, err := c.Exec(ctx, "create table "+table+" (id int primary key); insert into "+table+" values (1)"); err != nil {
			return false, "", err
		}
		defer c.Exec(ctx, "drop table "+table)
		_, err = c.Exec(ctx, "insert into "+table+" values ($1)", 1)
		uniq := state(err)
		return div == "22012" && divp == "22012" && uniq == "23505" && usable(c),
			fmt.Sprintf("div=%s div_param=%s unique=%s", div, divp, uniq), nil
	})

	check("notice", func() (bool, string, error) {
		var notices []string
		c, err := connectWith(func(cfg *pgx.ConnConfig) {
			cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) { notices = append(notices, n.Code+" "+n.Message) }
		})
		if err != nil {
			return false, "", err
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "do $$ begin raise notice 'hello %', 'pgx'; end $$"); err != nil {
			return false, "", err
		}
		if _, err := c.Exec(ctx, "do $$ begin raise warning 'second'; end $$"); err != nil {
			return false, "", err
		}
		d := strings.Join(notices, "; ")
		return d == "00000 hello pgx; 01000 second", d, nil
	})

	if scope == "all" {
		check("session_listen_notify", func() (bool, string, error) {
			c := conn()
			if _, err := c.Exec(ctx, "listen drv_pgx"); err != nil {
				return false, "", err
			}
			other, err := connect()
			if err != nil {
				return false, "", err
			}
			_, err = other.Exec(ctx, "select pg_notify($1, $2)", "drv_pgx", "payload ✓")
			other.Close(ctx)
			if err != nil {
				return false, "", err
			}
			wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			n, err := c.WaitForNotification(wctx)
			if err != nil {
				return false, "", err
			}
			c.Exec(ctx, "unlisten *")
			return n.Channel == "drv_pgx" && n.Payload == "payload ✓", n.Channel + " " + n.Payload, nil
		})

		check("session_set", func() (bool, string, error) {
			c := conn()
			if _, err := c.Exec(ctx, "set statement_timeout = '12345ms'; set search_path = 'drv_schema', public"); err != nil {
				return false, "", err
			}
			time.Sleep(200 * time.Millisecond)
			var a, b string
			if err := c.QueryRow(ctx, "select current_setting('statement_timeout'), current_setting($1)", "search_path").Scan(&a, &b); err != nil {
				return false, "", err
			}
			c.Exec(ctx, "reset statement_timeout; reset search_path")
			return a == "12345ms" && b == "drv_schema, public", "statement_timeout=" + a + " search_path=" + b, nil
		})

		check("session_temp_table", func() (bool, string, error) {
			c := conn()
			if _, err := c.Exec(ctx, "create temp table drv_tmp (x int); insert into drv_tmp values (1), (2)"); err != nil {
				return false, "", err
			}
			time.Sleep(200 * time.Millisecond)
			var n int
			if err := c.QueryRow(ctx, "select count(*) from drv_tmp where x > $1", 0).Scan(&n); err != nil {
				return false, "", err
			}
			c.Exec(ctx, "drop table drv_tmp")
			return n == 2, fmt.Sprintf("count=%d", n), nil
		})
	}
	if mainConn != nil {
		mainConn.Close(ctx)
	}
}
