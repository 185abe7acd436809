# ruby-pg (Debian's ruby-pg) compatibility checks; run by tests/integration/test_drivers.py.
# Usage: ruby ruby_pg.rb URL TABLE_PREFIX all|common
# Prints one JSON line per check: {"name":..., "ok":..., "detail":...}. "detail" must not depend on the target
# (PostgreSQL or pool64) so the test can compare it with the direct run; "session_" checks run only with "all".
require 'pg'
require 'json'
require 'bigdecimal'

URL, PREFIX, SCOPE = ARGV
$stdout.sync = true

def report(name, ok, detail)
  puts JSON.generate({ name: name, ok: ok ? true : false, detail: detail.to_s })
end

def sqlstate(e)
  e.respond_to?(:result) && e.result ? e.result.error_field(PG::PG_DIAG_SQLSTATE) : nil
end

def connect
  PG.connect(URL)
end

$conn = nil

def conn
  $conn ||= connect
end

def check(name)
  ok, detail = yield
  report(name, ok, detail)
rescue StandardError => e
  report(name, false, "#{e.class}: #{sqlstate(e)} #{e.message.lines.first.to_s.strip}")
  # Start the next check on a fresh connection, whatever state this one was left in.
  begin
    $conn&.close
  rescue StandardError
    nil
  end
  $conn = nil
end

# The SQLSTATE of the error the block raises, or "none".
def error_of
  yield
  'none'
rescue PG::Error => e
  sqlstate(e) || "no-sqlstate #{e.class}"
end

def usable?(c)
  c.exec('select 41 + 1').getvalue(0, 0) == '42'
end

def t(suffix)
  "#{PREFIX}_#{suffix}"
end

check('login') do
  c = conn
  user = c.exec('select current_user').getvalue(0, 0)
  [user == 'app' && c.status == PG::CONNECTION_OK, "user=#{user}"]
end

check('simple_query') do
  r = conn.exec("select 1 + 1 as two, 'x' || 'y' as xy")
  v = [r.getvalue(0, 0), r.getvalue(0, 1), r.fields]
  [v == ['2', 'xy', %w[two xy]], v.inspect]
end

check('param_types') do
  c = connect
  begin
    c.type_map_for_results = PG::BasicTypeMapForResults.new(c)
    c.type_map_for_queries = PG::BasicTypeMapForQueries.new(c)
    expected = [2_147_483_647, 9_007_199_254_740_993, 'grüße ✓ 日本', BigDecimal('12345.678901234567890'), true, nil,
                Time.utc(2024, 2, 29, 12, 34, 56.789r), 3.5e-7]
    r = c.exec_params('select $1::int4, $2::int8, $3::text, $4::numeric, $5::bool, $6::text, $7::timestamptz, ' \
                      '$8::float8', expected)
    v = r.values[0]
    # bytea as ruby-pg sends binary data: a binary-format parameter, and a binary-format result.
    blob = "\x00\x01\xfe\xff\\".b
    rb = conn.exec_params('select $1::bytea, length($1::bytea)', [{ value: blob, format: 1 }], 1)
    shown = v.map do |x|
      case x
      when Time then x.utc.strftime('%FT%T.%LZ')
      when BigDecimal then x.to_s('F')
      else x
      end
    end
    shown << rb.getvalue(0, 0).unpack1('H*')
    [v == expected && rb.getvalue(0, 0) == blob, shown.inspect]
  ensure
    c.close
  end
end

check('many_rows') do
  r = conn.exec_params('select g, md5(g::text) from generate_series(1, $1::int) g', [10_000])
  sum = r.column_values(0).sum(&:to_i)
  last = r.getvalue(9_999, 1)
  [r.ntuples == 10_000 && sum == 50_005_000 && last.size == 32, "rows=#{r.ntuples} sum=#{sum} last=#{last}"]
end

check('prepared_reuse') do
  c = conn
  c.prepare('reuse', 'select $1::int * 2, $2::text')
  bad = (1..300).count { |i| c.exec_prepared('reuse', [i, "v#{i}"]).values != [[(i * 2).to_s, "v#{i}"]] }
  desc = c.describe_prepared('reuse')
  c.exec('deallocate reuse')
  [bad.zero? && desc.nfields == 2, "bad=#{bad} nfields=#{desc.nfields} nparams=#{desc.nparams}"]
end

check('concurrent_prepared') do
  table = t('conc')
  conn.exec("create table #{table} (id int primary key, v text)")
  conn.exec("insert into #{table} select g, 'row' || g from generate_series(1, 50) g")
  threads = (0...5).map do |w|
    Thread.new do
      c = connect
      begin
        # The same statement name on every connection; each execution may land on a server the proxy did not
        # prepare it on.
        c.prepare('conc_get', "select v, $2::int as w from #{table} where id = $1")
        bad = 0
        120.times do |i|
          id = (i + w) % 50 + 1
          r = c.exec_prepared('conc_get', [id, w])
          bad += 1 unless r.values == [["row#{id}", w.to_s]]
          r2 = c.exec_params("select count(*) + $1::int from #{table}", [w])
          bad += 1 unless r2.getvalue(0, 0) == (50 + w).to_s
        end
        bad
      ensure
        c.close
      end
    end
  end
  bad = threads.map(&:value)
  conn.exec("drop table #{table}")
  [bad.all?(&:zero?), "bad=#{bad.inspect}"]
end

check('deallocate') do
  c = conn
  c.prepare('dealloc_me', 'select 1')
  a = c.exec_prepared('dealloc_me').getvalue(0, 0)
  c.exec('DEALLOCATE dealloc_me')
  gone = error_of { c.exec_prepared('dealloc_me') }
  c.prepare('dealloc_me', 'select 2')
  b = c.exec_prepared('dealloc_me').getvalue(0, 0)
  c.exec('DEALLOCATE dealloc_me')
  [a == '1' && gone == '26000' && b == '2', "first=#{a} after_deallocate=#{gone} reprepared=#{b}"]
end

check('duplicate_prepare') do
  c = conn
  c.prepare('dup', 'select 1')
  state = error_of { c.prepare('dup', 'select 2') }
  still = c.exec_prepared('dup').getvalue(0, 0)
  c.exec('deallocate dup')
  [state == '42P05' && still == '1' && usable?(c), "second_prepare=#{state} original=#{still}"]
end

check('parse_error_syntax') do
  c = conn
  state = error_of { c.prepare('bad_syntax', 'selec 1') }
  missing = error_of { c.exec_prepared('bad_syntax') }
  c.prepare('bad_syntax', 'select 3')
  v = c.exec_prepared('bad_syntax').getvalue(0, 0)
  c.exec('deallocate bad_syntax')
  [state == '42601' && missing == '26000' && v == '3' && usable?(c),
   "prepare=#{state} execute=#{missing} reprepared=#{v}"]
end

check('parse_error_undefined_table') do
  c = conn
  table = t('later')
  state = error_of { c.prepare('bad_table', "select x from #{table}") }
  c.exec("create table #{table} (x int)")
  c.exec("insert into #{table} values (7)")
  c.prepare('bad_table', "select x from #{table}")
  v = c.exec_prepared('bad_table').getvalue(0, 0)
  c.exec('deallocate bad_table')
  c.exec("drop table #{table}")
  [state == '42P01' && v == '7' && usable?(c), "prepare=#{state} after_create=#{v}"]
end

# A prepared SELECT * whose table gains a column: PostgreSQL answers 0A000 "cached plan must not change result type"
# until the statement is prepared again. The busy variant has another connection hold a transaction open while the
# statement runs again: behind a transaction-mode pool it then runs on a server connection that never prepared it.
def ddl_check(busy)
  if busy
    # Two clients of their own, with no session state that would pin them behind a transaction pool; the main one
    # is closed first (a session-mode pool of 2 has no room for three).
    $conn&.close
    $conn = nil
  end
  c = busy ? connect : conn
  table = t(busy ? 'ddl2' : 'ddl')
  c.exec("create table #{table} (a int, b text)")
  c.exec("insert into #{table} values (1, 'one')")
  c.prepare('ddl_sel', "select * from #{table}")
  outcome = lambda do
    r = c.exec_prepared('ddl_sel')
    "#{r.nfields}cols:#{r.values.inspect}"
  rescue PG::Error => e
    sqlstate(e)
  end
  steps = [outcome.call]
  if busy
    other = connect
    other.exec('begin')
    other.exec('select 1')
  end
  c.exec("alter table #{table} add column c int default 5")
  steps << outcome.call << outcome.call
  if busy
    other.exec('commit')
    other.close
  end
  steps << outcome.call
  c.exec('deallocate ddl_sel')
  c.prepare('ddl_sel', "select * from #{table}")
  steps << outcome.call
  c.exec('deallocate ddl_sel')
  c.exec("drop table #{table}")
  ok = steps.first == '2cols:[["1", "one"]]' && steps.last == '3cols:[["1", "one", "5"]]' && usable?(c)
  c.close if busy
  [ok, steps.join(' | ')]
end

check('ddl_change') { ddl_check(false) }

# A statement deallocated inside a failed transaction: PostgreSQL refuses the DEALLOCATE (25P02), so the statement
# stays; the same SQL prepared again under another name works.
def deallocate_in_failed_tx(c, tag)
  sql = "select 2/$1::int as #{tag}"
  c.exec('begin')
  c.prepare('ftx1', sql)
  div = error_of { c.exec_prepared('ftx1', [0]) }
  dealloc = error_of { c.exec('DEALLOCATE ftx1') }
  c.exec('rollback')
  still = begin
    c.exec_prepared('ftx1', [1]).getvalue(0, 0)
  rescue PG::Error => e
    sqlstate(e)
  end
  again = error_of { c.prepare('ftx2', sql) }
  runs = (1..3).map do
    c.exec_prepared('ftx2', [1]).getvalue(0, 0)
  rescue PG::Error => e
    sqlstate(e)
  end
  error_of { c.exec('DEALLOCATE ftx1') }
  error_of { c.exec('DEALLOCATE ftx2') }
  [div == '22012' && dealloc == '25P02' && still == '2' && again == 'none' && runs == %w[2 2 2] && usable?(c),
   "error=#{div} deallocate=#{dealloc} old_name=#{still} prepare_again=#{again} runs=#{runs.join(',')}"]
end

check('deallocate_in_failed_tx') do
  c = connect # its own client: the check leaves statements behind
  begin
    deallocate_in_failed_tx(c, 'ftx')
  ensure
    c.close
  end
end

# The same on a connection with session state (SET search_path): behind a transaction pool it is pinned to its
# server connection.
check('deallocate_in_failed_tx_pinned') do
  c = connect
  begin
    c.exec('set search_path = public')
    deallocate_in_failed_tx(c, 'ftx_pinned')
  ensure
    c.close
  end
end

# A Parse of SQL that worked before (and is still prepared), after its table was dropped: PostgreSQL fails the
# Parse (42P01), and the name stays free.
check('parse_error_after_drop') do
  c = conn
  table = t('dropped')
  c.exec("create table #{table} (x int)")
  c.exec("insert into #{table} values (1)")
  c.prepare('pad1', "select x from #{table}")
  first = c.exec_prepared('pad1').getvalue(0, 0)
  c.exec("drop table #{table}")
  at_prepare = error_of { c.prepare('pad2', "select x from #{table}") }
  at_execute = error_of { c.exec_prepared('pad2') }
  c.exec("create table #{table} (x int)")
  after_create = error_of { c.exec_prepared('pad2') }
  c.exec("drop table #{table}")
  error_of { c.exec('deallocate pad1') }
  error_of { c.exec('deallocate pad2') }
  [first == '1' && at_prepare == '42P01' && usable?(c),
   "first=#{first} prepare=#{at_prepare} execute=#{at_execute} after_create=#{after_create}"]
end

check('ddl_change_busy_server') { ddl_check(true) }

check('tx_commit') do
  c = conn
  table = t('tx')
  c.exec("create table #{table} (x int)")
  c.transaction { |tc| tc.exec("insert into #{table} values (1)") }
  c.exec('begin')
  c.exec("insert into #{table} values (2)")
  c.exec('rollback')
  v = c.exec("select array_agg(x order by x)::text from #{table}").getvalue(0, 0)
  c.exec("drop table #{table}")
  [v == '{1}', "rows=#{v}"]
end

check('tx_error_25P02') do
  c = conn
  c.exec('begin')
  first = error_of { c.exec('select 1/0') }
  status_in_error = c.transaction_status == PG::PQTRANS_INERROR
  second = error_of { c.exec('select 1') }
  c.exec('rollback')
  [first == '22012' && second == '25P02' && status_in_error && usable?(c),
   "error=#{first} next=#{second} inerror=#{status_in_error}"]
end

check('savepoint') do
  c = conn
  table = t('sp')
  c.exec("create table #{table} (x int)")
  c.exec('begin')
  c.exec("insert into #{table} values (1)")
  c.exec('savepoint a')
  c.exec("insert into #{table} values (2)")
  err = error_of { c.exec('select 1/0') }
  c.exec('rollback to savepoint a')
  c.exec("insert into #{table} values (3)")
  c.exec('release savepoint a')
  c.exec('commit')
  v = c.exec("select array_agg(x order by x)::text from #{table}").getvalue(0, 0)
  c.exec("drop table #{table}")
  [v == '{1,3}' && err == '22012', "rows=#{v} error=#{err}"]
end

check('copy') do
  c = conn
  table = t('copy')
  c.exec("create table #{table} (id int, v text)")
  c.copy_data("copy #{table} from stdin") do
    1.upto(1000) { |i| c.put_copy_data("#{i}\tvalue ✓ #{i}\n") }
  end
  out = []
  c.copy_data("copy (select * from #{table} order by id) to stdout") do
    while (row = c.get_copy_data)
      out << row.force_encoding('UTF-8')
    end
  end
  bad_copy = error_of do
    c.copy_data("copy #{table} from stdin") { c.put_copy_data("x\tnot an int\n") }
  end
  n = c.exec("select count(*) from #{table}").getvalue(0, 0)
  c.exec("drop table #{table}")
  [out.size == 1000 && out.last == "1000\tvalue ✓ 1000\n" && n == '1000' && bad_copy == '22P02' && usable?(c),
   "out=#{out.size} last=#{out.last.inspect} count=#{n} bad_row=#{bad_copy}"]
end

check('errors') do
  c = conn
  table = t('uniq')
  div = error_of { c.exec('select 1/0') }
  divp = error_of { c.exec_params('select 1/$1::int', [0]) }
  c.exec("create table #{table} (id int primary key)")
  c.exec("insert into #{table} values (1)")
  uniq = error_of { c.exec_params("insert into #{table} values ($1)", [1]) }
  c.exec("drop table #{table}")
  [div == '22012' && divp == '22012' && uniq == '23505' && usable?(c), "div=#{div} div_param=#{divp} unique=#{uniq}"]
end

check('notice') do
  c = conn
  notices = []
  c.set_notice_receiver { |r| notices << [r.error_field(PG::PG_DIAG_SQLSTATE), r.error_field(PG::PG_DIAG_MESSAGE_PRIMARY)] }
  c.exec("do $$ begin raise notice 'hello %', 'ruby'; end $$")
  c.exec_params("do $$ begin raise warning 'second'; end $$", [])
  c.set_notice_receiver
  [notices == [['00000', 'hello ruby'], ['01000', 'second']], notices.inspect]
end

if SCOPE == 'all'
  check('session_listen_notify') do
    c = conn
    c.exec('listen drv_ruby')
    other = connect
    other.exec("notify drv_ruby, 'payload ✓'")
    other.close
    got = nil
    c.wait_for_notify(10) { |channel, _pid, payload| got = [channel, payload] }
    c.exec('unlisten *')
    [got == ['drv_ruby', 'payload ✓'], got.inspect]
  end

  check('session_set') do
    c = conn
    c.exec("set statement_timeout = '12345ms'")
    c.exec("set search_path = 'drv_schema', public")
    sleep 0.2
    a = c.exec('show statement_timeout').getvalue(0, 0)
    b = c.exec('show search_path').getvalue(0, 0)
    c.exec('reset statement_timeout')
    c.exec('reset search_path')
    [a == '12345ms' && b == 'drv_schema, public', "statement_timeout=#{a} search_path=#{b}"]
  end

  check('session_temp_table') do
    c = conn
    c.exec('create temp table drv_tmp (x int)')
    c.exec('insert into drv_tmp values (1), (2)')
    sleep 0.2
    n = c.exec('select count(*) from drv_tmp').getvalue(0, 0)
    c.exec('drop table drv_tmp')
    [n == '2', "count=#{n}"]
  end
end

$conn&.close
