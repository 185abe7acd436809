-- Two projects, each with its own role and database, as the compose file expects.
CREATE ROLE alpha LOGIN PASSWORD 'alpha';
CREATE DATABASE alpha OWNER alpha;
CREATE ROLE beta LOGIN PASSWORD 'beta';
CREATE DATABASE beta OWNER beta;
