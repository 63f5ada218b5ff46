DROP TABLE spend_holds;
