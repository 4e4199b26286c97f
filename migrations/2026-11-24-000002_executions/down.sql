DROP TABLE execution_steps;
DROP TABLE executions;
DROP TABLE reference_images;
DROP TABLE nav_edge_stats;
DROP TABLE navigation_trees;
DROP TABLE testcases;
